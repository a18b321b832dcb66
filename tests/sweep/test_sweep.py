"""`lstmlab train -m` Optuna sweeps as a user runs them: real processes, tiny data, the real
Optuna storage (SQLite under mlruns/) and the real MLflow store of the test's folder."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import FRAMEWORK_NOISE, LSTMLAB, TINY

pytestmark = pytest.mark.slow

STORAGE = "sqlite:///mlruns/optuna.db"  # the sweeper's default, relative to the test's folder
SMALL = [*TINY, "model.units=[4,4]"]
PROGRESS = re.compile(r"^\[sweep \S+\] trial (\d+)(?: \(rerun of \d+\))? (COMPLETE|PRUNED|FAIL) ",
                      re.MULTILINE)


def lstmlab(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*LSTMLAB, "train", "-m", *args], capture_output=True, text=True,
                          timeout=timeout)


def trials(study: str, storage: str = STORAGE) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def parent_and_children(study: str):
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name("lstmlab")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.optuna_study = '{study}'")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return parent, sorted(children, key=lambda r: int(r.data.tags["optuna_trial"]))


def test_variants_sweep_records_the_study_and_resumes_to_n_trials():
    args = ["hparams_search=variants", *SMALL, "model.units=choice([4,4],[4,2,2])",
            "hydra.sweeper.max_failure_rate=1.0"]
    first = lstmlab(*args, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert [int(n) for n, _ in PROGRESS.findall(first.stdout)] == [0, 1]  # a line per trial
    assert not FRAMEWORK_NOISE.findall(first.stdout + first.stderr)  # quiet in every trial

    found = trials("variants-synthetic")
    assert [t.number for t in found] == [0, 1]
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in found)
    # every documented dimension was sampled, with the command line's units
    assert set(found[0].params) == {"model.bidirectional", "model.units", "model.activation",
                                    "model.dropout", "optimizer", "optimizer.learning_rate", "loss"}

    parent, children = parent_and_children("variants-synthetic")
    assert parent.info.status == "FINISHED"
    assert [c.info.run_name for c in children] == ["trial-0", "trial-1"]
    for child, trial in zip(children, found):
        assert child.data.tags["optuna_trial"] == str(trial.number)
        assert child.info.status == ("FINISHED" if trial.state == TrialState.COMPLETE else "FAILED")
        assert child.data.params["optimizer.name"] == trial.params["optimizer"]  # a normal run
        assert child.data.params["model.units"].replace(" ", "") == trial.params["model.units"]
    complete = [t for t in found if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(best.value)
    assert parent.data.tags["best_trial"] == str(best.number)
    # the best trial's params under its run's names: the parent and its trials share columns
    (best_run,) = [c for c in children if c.data.tags["optuna_trial"] == str(best.number)]
    assert parent.data.params["optimizer.name"] == best.params["optimizer"]
    assert parent.data.params["loss.name"] == best.params["loss"]
    assert parent.data.params == {key: best_run.data.params[key] for key in parent.data.params}
    assert "optimizer" not in parent.data.params and "model.units" in parent.data.params
    artifacts = {a.path for a in MlflowClient().list_artifacts(parent.info.run_id)}
    assert {"optimization_results.yaml", "optimization_history.png"} <= artifacts
    assert len(complete) == 2  # the seeded study's first two trials both train to a value...
    assert {"param_importances.png", "parallel_coordinate.png"} <= artifacts  # ...so these exist

    # the same command with a larger budget continues the same study under the same parent
    second = lstmlab(*args, "hydra.sweeper.n_trials=3")
    assert second.returncode == 0, second.stderr[-3000:]
    assert [t.number for t in trials("variants-synthetic")] == [0, 1, 2]
    parent_again, children = parent_and_children("variants-synthetic")
    assert parent_again.info.run_id == parent.info.run_id
    assert parent_again.info.status == "FINISHED" and len(children) == 3

    # ... and once n_trials have finished, rerunning it runs nothing twice
    third = lstmlab(*args, "hydra.sweeper.n_trials=3")
    assert third.returncode == 0, third.stderr[-3000:]
    assert not PROGRESS.findall(third.stdout) and "3/3 trials" in third.stdout
    assert len(trials("variants-synthetic")) == 3

    # the default name (variants-synthetic) on other data: refused in one line, nothing run
    other = lstmlab(*args, "hydra.sweeper.n_trials=4", "data.seed=7")
    assert other.returncode == 2
    (line,) = [x for x in other.stderr.splitlines() if x.strip()]
    assert "study 'variants-synthetic'" in line and "ran on other data" in line
    assert "hydra.sweeper.study_name=variants-synthetic-" in line
    assert len(trials("variants-synthetic")) == 3
    assert all(r.info.status == "FINISHED" for r in MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("lstmlab").experiment_id]))


def test_a_pruned_and_a_diverged_trial_do_not_stop_the_sweep():
    # Grid over two learning rates for SGD: 1e12 diverges at once; the other is pruned after
    # its first epoch by a threshold no price-unit RMSE gets under.
    result = lstmlab(
        "hydra/sweeper=lstmlab_optuna", "hydra.sweeper.study_name=prune-fail", *SMALL,
        "trainer.epochs=3", "optimizer=sgd", "optimizer.learning_rate=choice(1e12,0.01)",
        "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.pruner={name:threshold,upper:0.001}", "hydra.sweeper.max_failure_rate=0.5",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(state for _, state in PROGRESS.findall(result.stdout)) == ["FAIL", "PRUNED"]

    by_lr = {t.params["optimizer.learning_rate"]: t for t in trials("prune-fail")}
    assert by_lr[1e12].state == TrialState.FAIL
    assert "training diverged" in by_lr[1e12].user_attrs["error"]
    assert by_lr[0.01].state == TrialState.PRUNED and list(by_lr[0.01].intermediate_values) == [1]  # epoch 1

    parent, children = parent_and_children("prune-fail")
    runs = {float(c.data.params["optimizer.learning_rate"]): c for c in children}
    assert runs[1e12].info.status == "FAILED"
    pruned = runs[0.01]
    assert pruned.info.status == "FINISHED" and pruned.data.tags["state"] == "pruned"
    assert pruned.data.metrics["epochs_run"] == 1  # stopped at the pruner's word, not after 3
    assert parent.info.status == "FINISHED"
    assert not [r for r in [parent, *children] if r.info.status == "RUNNING"]


def test_past_max_failure_rate_the_sweep_stops_with_one_line():
    result = lstmlab(
        "hydra/sweeper=lstmlab_optuna", "hydra.sweeper.study_name=doomed", *SMALL,
        "trainer.epochs=1", "optimizer=sgd", "optimizer.learning_rate=choice(1e12)",
        "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=0.25",
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("lstmlab train: error: stopped the sweep: 1 of 3 trials failed")
    assert "Traceback" not in result.stderr
    assert [t.state for t in trials("doomed")] == [TrialState.FAIL]
    parent, (child,) = parent_and_children("doomed")
    assert parent.info.status == "FAILED" and child.info.status == "FAILED"


def test_a_killed_sweep_resumes_and_reruns_the_interrupted_trial():
    args = ["hydra/sweeper=lstmlab_optuna", "hydra.sweeper.study_name=killed", *SMALL,
            "model.dropout=interval(0,0.5)", "hydra.sweeper.n_trials=1",
            "hydra.sweeper.heartbeat_interval=1"]
    worker = subprocess.Popen([*LSTMLAB, "train", "-m", *args, "trainer.epochs=10000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _child_run_started("killed"):  # the trial is training: kill it mid-trial
            assert worker.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert [t.state for t in trials("killed")] == [TrialState.RUNNING]

    resumed = lstmlab(*args, "trainer.epochs=1")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trial 1 (rerun of 0) COMPLETE" in resumed.stdout
    interrupted, rerun = trials("killed")
    assert interrupted.state == TrialState.FAIL and rerun.state == TrialState.COMPLETE
    assert rerun.params == interrupted.params  # the same trial again, not a new one
    parent, children = parent_and_children("killed")
    # nothing left RUNNING: the killed worker's run is closed as KILLED by the resume (its process is gone)
    assert [c.info.status for c in children] == ["KILLED", "FINISHED"]
    assert parent.info.status == "FINISHED"


def _child_run_started(study: str) -> bool:
    experiment = mlflow.get_experiment_by_name("lstmlab")
    if experiment is None:
        return False
    try:
        runs = MlflowClient().search_runs([experiment.experiment_id], "tags.optuna_trial = '0'")
    except mlflow.exceptions.MlflowException:  # the store is being created by the worker
        return False
    return bool(runs) and Path("mlruns/optuna.db").exists()


@pytest.mark.parametrize("args, message", [
    (["model.unitz=choice([4,4],[8,8])"],
     "model.unitz=[4,4] in the search space (model.unitz=choice([4,4],[8,8])): "
     "Could not override 'model.unitz'"),
    (["optimizer=choice(adam,nope)"], "Could not find 'optimizer/nope'; available: adagrad, adam"),
    (["optimizer.learning_rate=tag(log, interval(0, 0.1))"], "needs a lower bound above 0"),
    (["model.dropout=interval(0,0.5)", "hydra.sweeper.storage=postgresql://postgres@127.0.0.1:1/x"],
     "cannot open the Optuna storage postgresql+psycopg2://postgres@127.0.0.1:1/x"),
    # checked once before the study opens, as a single run checks it: no trial used up (issue 10)
    (["model.units=choice([4],[0])"], "model.units=[0] must list one whole number above 0"),
])
def test_bad_input_is_one_line_and_leaves_no_study(args, message):
    result = lstmlab("hydra/sweeper=lstmlab_optuna", *SMALL, *args, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("lstmlab train: error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert not Path("mlruns").exists() and not Path("mlflow.db").exists()  # nothing written
