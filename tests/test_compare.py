"""`lstmlab compare` on real MLflow stores: runs logged with known metrics (the statistics) and
runs really trained (end to end). Every number compare reports is recomputed here from the runs
as MLflow returns them."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from scipy import stats as scipy_stats

from conftest import tiny_config
from lstmlab.cli import main as cli_main
from lstmlab.comparison.compare import compare
from lstmlab.records.names import FINAL_METRICS

# val_rmse per seed 1, 2, 3, ... of each variant; the verdicts are known in advance.
KNOWN = {
    "baseline": [1.00, 1.10, 0.90, 1.05],
    "worse": [2.00, 2.20, 1.90, 2.10],
    "better": [0.50, 0.55, 0.45, 0.52],
    "noisy": [0.60, 1.60, 0.90, 1.30],
    "single": [0.80],
}
ONE_RUN = "no verdict (one run; train with trainer.seed=1,2,3,...)"
VERDICTS = {"baseline": "baseline", "worse": "worse", "better": "better", "noisy": "no evidence", "single": ONE_RUN}


def final_metrics(val_rmse: float, seed: int) -> dict[str, float]:
    test_rmse = 1.1 * val_rmse + 0.01 * seed
    return {
        "val_rmse": val_rmse,
        "test_rmse": test_rmse,
        "test_mae": 0.8 * val_rmse,
        "test_mape": 2.0 * val_rmse,
        "test_r2": 1.0 - val_rmse / 10,
        "test_directional_accuracy": 0.5 + 0.01 * seed,
        "naive_test_rmse": 1.2,
        "naive_test_mae": 1.0,
        "test_skill": 1.0 - test_rmse / 1.2,
        "train_seconds": 3.0 + seed,
        "epochs_run": 2.0,
    }


class Store:
    """Runs logged through MLflow's client with chosen start times, so "latest" is known."""

    def __init__(self, experiment: str = "lstmlab"):
        self.client = MlflowClient()
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.clock = 1_700_000_000_000

    def log(self, variant: str, seed: int, metrics: dict[str, float] | None, *, status: str = "FINISHED",
            lr: str = "0.001", tags: dict[str, str] | None = None, run_name: str | None = None) -> str:
        self.clock += 1000
        all_tags = {"variant": variant, "baseline": str(variant == "baseline").lower(),
                    "data_sha256": "d" * 64, **(tags or {})}
        run = self.client.create_run(self.experiment_id, start_time=self.clock, tags=all_tags,
                                     run_name=run_name or variant)
        params = {
            "model.units": "[50, 50]",
            "optimizer.learning_rate": lr,
            "tracking.variant": variant,
            "trainer.seed": str(seed),
            # how a run is recorded differs from run to run but must not split a group
            "tracking.uri": f"sqlite:///somewhere-{seed}.db",
            "trainer.verbose": "auto" if seed % 2 else "0",
        }
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(key, value, self.clock, 2) for key, value in (metrics or {}).items()],
            params=[Param(key, value) for key, value in params.items()],
        )
        if status != "RUNNING":
            self.client.set_terminated(run.info.run_id, status, end_time=self.clock + 500)
        return run.info.run_id


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One store, logged once: the KNOWN groups, a sweep, and runs compare must leave out."""
    folder = tmp_path_factory.mktemp("known")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        store = Store()
        ids: dict[str, list[str]] = {}
        for variant, values in KNOWN.items():
            if variant == "baseline":
                continue
            ids[variant] = [store.log(variant, seed, final_metrics(v, seed)) for seed, v in enumerate(values, 1)]
        # baseline last, so its seed-4 run is the latest run tagged baseline=true
        ids["baseline"] = [store.log("baseline", s, final_metrics(v, s)) for s, v in enumerate(KNOWN["baseline"], 1)]
        # a rerun of worse/seed 1 (same config, seed and result): counted once, not as a fifth sample
        ids["rerun"] = store.log("worse", 1, final_metrics(KNOWN["worse"][0], 1), tags={"rerun_of": ids["worse"][0]})
        # left out: a failed baseline (newer than every finished one), a running run
        ids["failed"] = store.log("baseline", 9, {"val_rmse": 0.01}, status="FAILED")
        ids["running"] = store.log("baseline", 8, {"val_rmse": 0.01}, status="RUNNING")
        # a sweep: the parent carries a summary metric; one trial pruned
        parent = store.log("sweep", 0, {"val_rmse": 0.3}, tags={"optuna_study": "study-a"}, run_name="study-a")
        child = {"mlflow.parentRunId": parent}
        ids["parent"] = parent
        ids["trials"] = [
            store.log("trial", 1, final_metrics(0.3, 1), lr="0.01", tags={**child, "optuna_trial": "0"}, run_name="trial-0"),
            store.log("trial", 1, final_metrics(1.7, 1), lr="0.1", tags={**child, "optuna_trial": "1"}, run_name="trial-1"),
        ]
        ids["pruned"] = store.log("trial", 1, {"val_rmse": 9.0}, lr="0.5",
                                  tags={**child, "optuna_trial": "2", "state": "pruned"}, run_name="trial-2")
        ids["lonely_parent"] = store.log("sweep", 0, {"val_rmse": 0.2}, tags={"optuna_study": "study-b"}, run_name="study-b")
        Store("empty")
        Store("no-baseline").log("tanh", 1, final_metrics(1.0, 1))
    return {"uri": uri, "ids": ids}


@pytest.fixture
def known_store(known: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", known["uri"])
    mlflow.set_tracking_uri(known["uri"])
    return known


def metrics_of(run_id: str) -> dict[str, float]:
    """Final metrics as MLflow holds them: what compare must agree with."""
    return MlflowClient().get_run(run_id).data.metrics


def group_members(comparison, group: str) -> list[str]:
    return comparison.runs.loc[comparison.runs["group"] == group, "run_id"].tolist()


def test_groups_means_sds_and_welch_verdicts_equal_those_recomputed_from_the_runs(known_store):
    ids = known_store["ids"]
    result = compare()

    assert result.baseline_run_id == ids["baseline"][-1]  # latest finished baseline, not the failed one
    shown = set(result.runs["run_id"])
    for left_out in ("failed", "running", "parent", "lonely_parent", "pruned"):
        assert ids[left_out] not in shown
    assert ids["worse"][0] not in shown and ids["rerun"] in shown  # the latest of a repeated seed
    assert any("Left out 1 older run" in note for note in result.notes)

    groups = result.groups.set_index("group")
    baseline_values = [metrics_of(i)["val_rmse"] for i in group_members(result, "baseline")]
    assert sorted(baseline_values) == sorted(KNOWN["baseline"])
    for variant, verdict in VERDICTS.items():
        members = group_members(result, variant)
        values = [metrics_of(i)["val_rmse"] for i in members]
        row = groups.loc[variant]
        assert row["n"] == len(KNOWN[variant]) == len(values)
        assert row["seeds"] == ",".join(str(s) for s in range(1, len(values) + 1))
        assert row["val_rmse_mean"] == pytest.approx(np.mean(values), rel=1e-12)
        if len(values) > 1:
            assert row["val_rmse_sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        else:
            assert math.isnan(row["val_rmse_sd"])
        assert row["val_rmse_diff"] == pytest.approx(np.mean(values) - np.mean(baseline_values), abs=1e-12)
        for metric in FINAL_METRICS:
            assert row[f"{metric}_mean"] == pytest.approx(np.mean([metrics_of(i)[metric] for i in members]), rel=1e-12)
        assert row["verdict"] == verdict
        if verdict in ("better", "worse", "no evidence"):
            expected = scipy_stats.ttest_ind(values, baseline_values, equal_var=False)
            assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
            assert (row["p_value"] < 0.05) == (verdict != "no evidence")
        else:
            assert math.isnan(row["p_value"])
    assert list(result.groups["val_rmse_mean"]) == sorted(result.groups["val_rmse_mean"])  # best first


def test_every_run_differs_from_the_baseline_run_by_what_its_metrics_say(known_store):
    result = compare()
    base = metrics_of(result.baseline_run_id)
    assert result.runs.loc[result.runs["baseline_run"], "run_id"].tolist() == [result.baseline_run_id]
    for row in result.runs.itertuples(index=False):
        logged = metrics_of(row.run_id)
        for metric in FINAL_METRICS:
            assert getattr(row, metric) == logged[metric]
            assert getattr(row, f"{metric}_diff") == pytest.approx(logged[metric] - base[metric], abs=1e-12)
            assert getattr(row, f"{metric}_rel_diff") == pytest.approx(
                (logged[metric] - base[metric]) / abs(base[metric]), abs=1e-12)
    assert list(result.runs["val_rmse"]) == sorted(result.runs["val_rmse"])


def test_a_higher_is_better_metric_sorts_descending_and_keeps_the_verdicts_right(known_store):
    result = compare(metric="test_skill")
    assert list(result.groups["test_skill_mean"]) == sorted(result.groups["test_skill_mean"], reverse=True)
    verdicts = result.groups.set_index("group")["verdict"]
    assert verdicts["better"] == "better" and verdicts["worse"] == "worse"  # lower RMSE, higher skill
    assert list(result.runs["test_skill"]) == sorted(result.runs["test_skill"], reverse=True)


def test_a_sweep_by_parent_id_or_study_name_and_a_filter_narrow_the_runs(known_store):
    ids = known_store["ids"]
    for sweep in (ids["parent"], "study-a"):
        result = compare(sweep=sweep)
        assert set(result.runs["run_id"]) == set(ids["trials"]) | set(ids["baseline"])
        labels = set(result.groups["group"])  # two trials named alike: told apart by their params
        assert labels == {"baseline", "trial (optimizer.learning_rate=0.01)", "trial (optimizer.learning_rate=0.1)"}
        assert set(result.groups.loc[~result.groups["baseline_group"], "verdict"]) == {ONE_RUN}
        assert any("from outside the selection" in note for note in result.notes)

    result = compare(filter_string="tags.variant = 'better'")
    assert set(result.runs["run_id"]) == set(ids["better"]) | set(ids["baseline"])


def test_an_explicit_baseline_run_sets_the_reference(known_store):
    ids = known_store["ids"]
    result = compare(baseline=ids["better"][0][:8])
    assert result.baseline_run_id == ids["better"][0]
    verdicts = result.groups.set_index("group")["verdict"]
    assert verdicts["better"] == "baseline" and verdicts["baseline"] == "worse"
    base = metrics_of(ids["better"][0])["val_rmse"]
    row = result.runs.set_index("run_id").loc[ids["worse"][1]]
    assert row["val_rmse_diff"] == pytest.approx(KNOWN["worse"][1] - base)


def test_the_command_prints_the_tables_and_writes_csv_markdown_and_a_chart(known_store, project_dir, capsys):
    assert cli_main(["compare"]) == 0
    out = capsys.readouterr().out
    for text in ("Seed groups", "worse", "better", "no evidence", ONE_RUN, "Welch", known_store["ids"]["baseline"][-1]):
        assert text in out
    reports = list((project_dir / "experiments" / "reports").iterdir())
    assert len(reports) == 1
    folder = reports[0]
    assert sorted(p.name for p in folder.iterdir()) == ["chart.png", "groups.csv", "report.md", "runs.csv"]
    assert (folder / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_csv(folder / "runs.csv")
    for row in runs.itertuples(index=False):
        assert row.val_rmse == metrics_of(row.run_id)["val_rmse"]
    groups = pd.read_csv(folder / "groups.csv").set_index("group")
    assert groups.loc["worse", "verdict"] == "worse" and groups.loc["worse", "n"] == 4
    markdown = (folder / "report.md").read_text()
    assert "| group | n | seeds |" in markdown and "| worse | 4 | 1,2,3,4 |" in markdown


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment", "nope"], "no experiment named 'nope'"),
        (["--experiment", "empty"], "has no finished runs with val_rmse"),
        (["--experiment", "no-baseline"], "no baseline in experiment 'no-baseline'"),
        (["--filter", "params.x ="], "bad filter"),
        (["--filter", "tags.variant = 'none-such'"], "no finished runs with val_rmse"),
        (["--baseline", "0" * 32], "--baseline 00000000000000000000000000000000"),
        (["--sweep", "no-such-study"], "neither a run id nor a study name"),
        (["--alpha", "2"], "--alpha 2.0 must be between 0 and 1"),
    ],
)
def test_user_errors_are_one_line(known_store, capsys, args, message):
    assert cli_main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab compare: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_compare_does_not_import_keras_or_tensorflow(known_store, project_dir):
    code = (
        "import sys; from lstmlab.cli import main; rc = main(['compare']); "
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules); "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": known_store["uri"]}
    done = subprocess.run([sys.executable, "-c", code], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


# ---- end to end: really trained runs ----------------------------------------------------------

# A learning rate a thousand times too small leaves the weights where they started: a model
# that is worse than the baseline whatever the seed.
CRIPPLED = ["model.units=[16]", "model.activation=tanh", "optimizer.learning_rate=1e-6", "tracking.variant=crippled"]
BASELINE = ["model.units=[4,4]", "optimizer.learning_rate=0.01", "tracking.variant=baseline"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three seeds each of a small baseline and a crippled variant, trained for real."""
    from lstmlab.pipeline.experiment import run_experiment

    folder = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    ids: dict[str, list[str]] = {"baseline": [], "crippled": []}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for name, overrides in (("baseline", BASELINE), ("crippled", CRIPPLED)):
            for seed in (1, 2, 3):
                ids[name].append(run_experiment(tiny_config(*overrides, f"trainer.seed={seed}"))["run_id"])
    return {"uri": uri, "ids": ids}


def test_real_runs_a_crippled_variant_comes_out_significantly_worse(trained, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    assert cli_main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "crippled" in out and "worse" in out

    mlflow.set_tracking_uri(trained["uri"])
    result = compare()
    groups = result.groups.set_index("group")
    assert result.baseline_run_id == trained["ids"]["baseline"][-1]
    assert set(groups.index) == {"baseline", "crippled"}
    base = [metrics_of(i)["val_rmse"] for i in trained["ids"]["baseline"]]
    crippled = [metrics_of(i)["val_rmse"] for i in trained["ids"]["crippled"]]
    assert groups.loc["crippled", "n"] == 3 and groups.loc["crippled", "seeds"] == "1,2,3"
    assert groups.loc["crippled", "val_rmse_mean"] == pytest.approx(np.mean(crippled), rel=1e-12)
    assert groups.loc["baseline", "val_rmse_sd"] == pytest.approx(np.std(base, ddof=1), rel=1e-12)
    expected = scipy_stats.ttest_ind(crippled, base, equal_var=False).pvalue
    assert groups.loc["crippled", "p_value"] == pytest.approx(expected, rel=1e-9)
    assert groups.loc["crippled", "p_value"] < 0.05
    assert groups.loc["crippled", "verdict"] == "worse"
