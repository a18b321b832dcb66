"""Sweeps under faults: a trial stuck RUNNING with no heartbeat, Ctrl-C just after a trial's
line, a data error before the study opens (issue 10, items 1 and 7)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import mlflow
import optuna
import pytest

from conftest import LSTMLAB, TINY

pytestmark = pytest.mark.slow

STORAGE = "sqlite:///mlruns/optuna.db"  # the sweeper's default, in the test's folder
SWEEP = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY,
         "trainer.epochs=1", "model.units=[4]", "model.dropout=interval(0,0.5)"]


def states(study: str) -> list[tuple[int, str]]:
    trials = optuna.load_study(study_name=study, storage=STORAGE).get_trials()
    return [(t.number, t.state.name) for t in trials]


def running_runs() -> list:
    return mlflow.search_runs(search_all_experiments=True, filter_string="attributes.status = 'RUNNING'",
                              output_format="list")


def test_a_trial_that_never_beat_is_requeued_and_ctrl_c_after_a_trial_stops_the_sweep():
    Path("mlruns").mkdir()
    optuna.create_study(storage=STORAGE, study_name="stuck").ask()  # RUNNING, no heartbeat, ever
    command = [*SWEEP, "hydra.sweeper.study_name=stuck", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.heartbeat_interval=1"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in sweep.stdout:  # trial 0 is failed once silent for 3 s, and run again as 1
        if "] trial 1 (rerun of 0) COMPLETE" in line:
            sweep.send_signal(signal.SIGINT)  # Ctrl-C just after the trial's line
            break
    rest, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "lstmlab train: interrupted" and "Traceback" not in err
    assert " COMPLETE " not in rest and "] killed: 1/2 trials" in rest  # stopped, not run to the end
    after = states("stuck")
    assert after[:2] == [(0, "FAIL"), (1, "COMPLETE")]
    assert after[2:] in ([], [(2, "FAIL"), (3, "WAITING")])  # a started trial is queued again
    assert running_runs() == []

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "] finished: 2/2 trials (2 complete" in resumed.stdout
    assert [state for _, state in states("stuck")].count("COMPLETE") == 2
    assert "RUNNING" not in [state for _, state in states("stuck")] and running_runs() == []


def test_a_mistyped_data_path_stops_the_sweep_before_any_trial():
    command = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna",
               "hydra.sweeper.study_name=typo", "data=csv", "data.path=prices.cvs",
               "model.dropout=interval(0,0.5)", "hydra.sweeper.n_trials=8"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "lstmlab train: error: data file not found: prices.cvs"
    assert not Path("mlruns/optuna.db").exists()  # no study, so no trial used up


def test_too_many_walk_forward_folds_stop_the_sweep_before_any_trial():
    command = [*SWEEP, "hydra.sweeper.study_name=folds", "hydra.sweeper.n_trials=4",
               "evaluation=walk_forward", "evaluation.folds=1000"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "lstmlab train: error: evaluation.folds=1000 is too many: the evaluation period has 24 rows "
        "(data.test_fraction=0.1), so at most 24 folds"]
    assert not Path("mlruns/optuna.db").exists()  # no study, so no trial used up
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
