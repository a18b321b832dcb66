"""What a user sees from `lstmlab train`: real processes, output captured as `> out.txt 2>&1`
would, the real MLflow store of the test's folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import FRAMEWORK_NOISE, LSTMLAB, TINY

NOISE = FRAMEWORK_NOISE
SUMMARY = re.compile(
    r"^Run (?P<name>\S+) (?P<run_id>[0-9a-f]{32}) \(experiment 'lstmlab', data synthetic\): finished\n"
    r"  test RMSE (?P<test_rmse>[\d.]+)   naive (?P<naive_test_rmse>[\d.]+)   skill (?P<test_skill>[-+\d.]+)\n"
    r"  the model (?P<verdict>BEAT|did NOT beat) the naive forecast \"tomorrow = today\".*\n"
    r"  val RMSE (?P<val_rmse>[\d.]+)   epochs (?P<epochs_run>\d+)   (?P<train_seconds>[\d.]+) s training\n"
    r"Look: lstmlab ui, then open http://127\.0\.0\.1:5000/#/experiments/(?P<experiment_id>\d+)/runs/(?P=run_id)\n"
    r"      lstmlab compare .*\n?\Z",
    re.MULTILINE,
)


def train_to_file(folder: Path, *args: str) -> tuple[int, str]:
    """`lstmlab train ARGS > out.txt 2>&1` in `folder`, on the store there."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as on a user's machine (conftest sets it)
    env.pop("KERAS_BACKEND", None)
    with open(folder / "out.txt", "w") as out:
        done = subprocess.run([*LSTMLAB, "train", *args], cwd=folder, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=600)
    return done.returncode, (folder / "out.txt").read_text()


@pytest.fixture(scope="module", params=["tensorflow", "jax"])
def demo(request, tmp_path_factory):
    """The README's quick demo, as a user runs it, once per backend."""
    folder = tmp_path_factory.mktemp(f"demo-{request.param}")
    code, text = train_to_file(folder, "data=synthetic", "trainer.epochs=2",
                               f"trainer.backend={request.param}")
    return {"folder": folder, "code": code, "text": text, "backend": request.param,
            "uri": f"sqlite:///{folder / 'mlflow.db'}"}


@pytest.mark.slow
def test_the_demo_prints_no_noise_and_ends_with_the_summary_of_its_mlflow_run(demo, monkeypatch):
    text = demo["text"]
    assert demo["code"] == 0, text
    assert "\x1b" not in text and "\r" not in text  # no ANSI escapes, no progress bar
    assert not NOISE.findall(text), text
    lines = text.splitlines()
    assert len(lines) <= 15, text
    # a line per epoch (stdout is a file), then the summary and nothing after it
    assert [line.split()[:2] for line in lines[:2]] == [["epoch", "1/2"], ["epoch", "2/2"]]
    found = SUMMARY.search(text)
    assert found, text
    assert found.start() == len("\n".join(lines[:2])) + 1

    monkeypatch.setenv("MLFLOW_TRACKING_URI", demo["uri"])
    mlflow.set_tracking_uri(demo["uri"])
    run = MlflowClient().get_run(found["run_id"])
    assert run.info.experiment_id == found["experiment_id"] and run.info.run_name == found["name"]
    assert run.data.tags["keras_backend"] == demo["backend"]
    metrics = run.data.metrics
    for key, decimals in [("test_rmse", 4), ("naive_test_rmse", 4), ("test_skill", 4),
                          ("val_rmse", 4), ("train_seconds", 1)]:
        assert float(found[key]) == pytest.approx(round(metrics[key], decimals), abs=1e-9), key
    assert int(found["epochs_run"]) == metrics["epochs_run"] == 2
    beat = metrics["test_rmse"] < metrics["naive_test_rmse"]
    assert found["verdict"] == ("BEAT" if beat else "did NOT beat")


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_the_run_has_a_model_signature_and_its_data_as_a_dataset_input(demo, monkeypatch):
    from mlflow.models import get_model_info

    monkeypatch.setenv("MLFLOW_TRACKING_URI", demo["uri"])
    mlflow.set_tracking_uri(demo["uri"])
    (run,) = mlflow.search_runs(experiment_names=["lstmlab"], output_format="list")
    (model,) = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    signature = get_model_info(model.model_uri).signature
    assert signature is not None
    (inputs,), (outputs,) = signature.inputs.inputs, signature.outputs.inputs
    assert inputs.shape == (-1, 60, 1)  # (windows, data.lookback, features)
    assert outputs.shape == (-1, 1)  # the next price (scaled)

    (dataset_input,) = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == "synthetic"
    assert dataset.digest == run.data.tags["data_sha256"][:12]
    assert "synthetic_prices(rows=1200, seed=0)" in dataset.source
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"


@pytest.mark.slow
def test_a_bad_trainer_value_prints_its_one_line_and_nothing_else(tmp_path):
    code, text = train_to_file(tmp_path, "data=synthetic", "trainer.epochs=-1")
    assert code == 2
    assert text == "lstmlab train: error: trainer.epochs=-1 must be a whole number of at least 1\n"


@pytest.mark.parametrize("value", [3, -1, "yes", True])
def test_trainer_verbose_is_one_of_keras_values(value):
    from conftest import tiny_config
    from lstmlab.errors import LstmlabError
    from lstmlab.pipeline.checks import check_config

    cfg = tiny_config()
    for good in (0, 1, 2, "auto"):
        cfg.trainer.verbose = good
        check_config(cfg)
    cfg.trainer.verbose = value
    with pytest.raises(LstmlabError, match=f"trainer.verbose={value!r} must be one of auto, 0, 1, 2"):
        check_config(cfg)


@pytest.mark.slow
def test_verbose_brings_the_framework_lines_back(tmp_path):
    code, text = train_to_file(tmp_path, "-v", *TINY)
    assert code == 0, text
    assert "absl::InitializeLog" in text or "oneDNN" in text  # TensorFlow's C++ start-up lines
    assert "Run baseline" in text


@pytest.mark.slow
def test_a_multirun_prints_a_line_per_job_and_ends_with_a_table_of_its_runs(tmp_path, monkeypatch):
    code, text = train_to_file(tmp_path, "-m", "variant=baseline,tanh", *TINY, "trainer.epochs=1")
    assert code == 0, text
    assert not NOISE.findall(text), text
    lines = text.splitlines()
    jobs = [line for line in lines if re.match(r"job \d+: ", line)]
    assert [line.split()[1:3] for line in jobs] == [["0:", "baseline"], ["1:", "tanh"]]
    header = lines.index(next(line for line in lines if line.split()[:2] == ["job", "run"]))
    rows, look = lines[header + 1:-1], lines[-1]
    assert look.startswith("Look: ") and "lstmlab compare" in look

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {r.info.run_id[:8]: r for r in mlflow.search_runs(experiment_names=["lstmlab"], output_format="list")}
    assert len(rows) == len(runs) == 2
    for row in rows:
        job, name, short_id, val_rmse, test_rmse, naive, *_ = row.split()
        run = runs[short_id]
        assert run.info.run_name == name
        assert float(val_rmse) == pytest.approx(round(run.data.metrics["val_rmse"], 4), abs=1e-9)
        assert float(test_rmse) == pytest.approx(round(run.data.metrics["test_rmse"], 4), abs=1e-9)
        assert float(naive) == pytest.approx(round(run.data.metrics["naive_test_rmse"], 4), abs=1e-9)


def test_progress_is_keras_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch, tmp_path):
    from lstmlab.pipeline.keras_side.train import EpochLines, progress

    primary, secondary = os.openpty()
    with open(secondary, "w") as terminal:
        monkeypatch.setattr(sys, "stdout", terminal)
        assert progress("auto") == ("auto", [])  # Keras' own bar
    os.close(primary)
    with open(tmp_path / "file.txt", "w") as file:
        monkeypatch.setattr(sys, "stdout", file)
        verbose, printers = progress("auto")
        assert verbose == 0 and [type(p) for p in printers] == [EpochLines]
        assert progress(2) == (2, [])  # what the user asked for


def test_native_stderr_is_hidden_during_an_import_and_replayed_when_it_fails(capfd, monkeypatch):
    from lstmlab.console import native_stderr_hidden

    monkeypatch.delenv("LSTMLAB_VERBOSE", raising=False)
    with native_stderr_hidden():
        os.write(2, b"I0000 chatter from C++\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError), native_stderr_hidden():
        os.write(2, b"F0000 the real reason\n")
        raise ImportError("no such library")
    assert capfd.readouterr().err == "F0000 the real reason\n"


def test_a_study_is_named_after_its_search_and_data():
    from conftest import make_config
    from lstmlab.sweep.sweeper_needs import default_name

    assert default_name("variants", make_config().data) == "variants-sp500"
    assert default_name("wide", make_config("data=synthetic").data) == "wide-synthetic"
    assert default_name("variants", make_config("data=csv", "data.path=/x/prices.csv").data) == "variants-csv-prices"
    assert default_name(None, make_config("data=synthetic").data) == "sweep-synthetic"


@pytest.mark.slow
def test_a_project_folder_named_with_spaces_and_accents_gets_no_stray_folder_beside_it(tmp_path, monkeypatch):
    """MLflow's default store address is percent-encoded; opened as such it made an empty
    `my%20pr%C3%B8ject%20%C3%BC` beside the project. The runs stay in the project's own store."""
    from lstmlab.commands.ui import command

    project = tmp_path / "my prøject ü"
    project.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}  # MLflow's default
    for args in (["train", *TINY], ["compare"]):
        done = subprocess.run([*LSTMLAB, *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert os.listdir(tmp_path) == ["my prøject ü"]
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    line = command([])  # lstmlab ui's `mlflow ui` command line
    store = f"sqlite:///{project / 'mlflow.db'}"
    assert line[line.index("--backend-store-uri") + 1] == store
    assert os.listdir(tmp_path) == ["my prøject ü"]

    client = MlflowClient(store)
    (baseline,) = client.search_runs([client.get_experiment_by_name("lstmlab").experiment_id],
                                     "tags.baseline = 'true'")
    assert baseline.info.status == "FINISHED"
    assert (project / "mlruns" / baseline.info.experiment_id / baseline.info.run_id / "artifacts"
            / "config.yaml").is_file()
