"""`lstmlab rerun` on a real store: a really trained run, rebuilt from its config.yaml."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from conftest import make_config, train_in_own_store, use_store
from lstmlab.cli import main as cli_main
from lstmlab.names import FINAL_METRICS
from lstmlab.records.rerun import TIMING_METRICS

pytestmark = pytest.mark.slow

# Far from today's conf/ defaults (units [50, 50], S&P 500, lookback 60): a rerun built from
# conf/ instead of the record would show in every param.
OVERRIDES = ["model.units=[4,4]", "trainer.seed=7", "tracking.variant=baseline"]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return train_in_own_store(tmp_path_factory.mktemp("rerun"), *OVERRIDES)


@pytest.fixture
def store(original: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    use_store(original["uri"], monkeypatch)
    return original


def reruns_of(run_id: str) -> list:
    return mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.rerun_of = '{run_id}'", output_format="list"
    )


def test_a_rerun_reproduces_every_final_metric_from_the_logged_config(store, capsys):
    run_id = store["run_id"]
    before = MlflowClient().get_run(run_id)
    assert cli_main(["rerun", run_id, "--check"]) == 0
    out = capsys.readouterr().out
    assert "All 10 checked metrics identical" in out and "same fingerprint" in out

    [new] = reruns_of(run_id)
    assert new.info.run_name == before.info.run_name == "baseline"
    assert new.info.status == "FINISHED"
    assert new.info.experiment_id == before.info.experiment_id
    assert new.data.tags["data_sha256"] == before.data.tags["data_sha256"]
    assert new.data.tags["keras_backend"] == before.data.tags["keras_backend"] == "tensorflow"
    assert "Keras backend" not in out  # the rerun's backend is the original's: no warning
    assert new.data.params == before.data.params  # the record's config, not today's conf/
    for metric in FINAL_METRICS:
        if metric not in TIMING_METRICS:
            assert new.data.metrics[metric] == before.data.metrics[metric], metric
        assert f"{metric} " in out


def test_check_fails_on_a_tampered_metric_and_says_when_the_data_changed(store, capsys):
    client, run_id = MlflowClient(), store["run_id"]
    original = client.get_run(run_id)
    true_rmse, true_sha = original.data.metrics["test_rmse"], original.data.tags["data_sha256"]
    last = max(client.get_metric_history(run_id, "test_rmse"), key=lambda m: (m.step, m.timestamp))
    try:  # a newer value at the same step is what MLflow now shows as the run's test_rmse
        client.log_metric(run_id, "test_rmse", true_rmse * 1.01, timestamp=last.timestamp + 1, step=last.step)
        client.set_tag(run_id, "data_sha256", "0" * 64)
        assert client.get_run(run_id).data.metrics["test_rmse"] == true_rmse * 1.01
        assert cli_main(["rerun", run_id, "--check"]) == 1
        out = capsys.readouterr().out
        assert "THE DATA HAVE CHANGED" in out
        assert "1 of 10 metrics differ beyond relative tolerance 1e-06: test_rmse" in out
        assert [line.split()[0] for line in out.splitlines() if line.endswith("DIFFERENT")] == ["test_rmse"]
    finally:  # put the record back for the other tests of this module
        client.log_metric(run_id, "test_rmse", true_rmse, timestamp=last.timestamp + 2, step=last.step)
        client.set_tag(run_id, "data_sha256", true_sha)
    assert client.get_run(run_id).data.metrics["test_rmse"] == true_rmse


def bare_run(config_yaml: str | None = None) -> str:
    """A run with no results; optionally with a config.yaml (as written by lstmlab.track)."""
    mlflow.set_experiment("lstmlab")  # MLflow remembers the last experiment set, maybe in another store
    with mlflow.start_run(run_name="bare") as run:
        if config_yaml is not None:
            mlflow.log_text(config_yaml, "config.yaml")
    return run.info.run_id


def test_user_errors_are_one_line(project_dir, capsys):
    gone = make_config("data=csv", f"data.path={project_dir / 'gone' / 'prices.csv'}", "model.units=[4,4]")
    cases = [
        ("0" * 32, "unknown run id '00000000000000000000000000000000'"),
        (bare_run(), "has no config.yaml"),
        (bare_run(OmegaConf.to_yaml(gone, resolve=True)), "which no longer exists"),
    ]
    capsys.readouterr()  # MLflow's notes on creating the store
    for run_id, message in cases:
        assert cli_main(["rerun", run_id]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lstmlab rerun: error: ") and message in err, err
        assert err.count("\n") == 1
    assert not reruns_of(cases[2][0])  # nothing was started
