"""Jobs side by side: Hydra's joblib launcher (processes) and the project's `parallel` launcher on
a fresh SQLite MLflow store, a real Ctrl-C to the whole process group, and a sweep through
hydra-submitit-launcher's `submitit_local` (the SLURM code path, run locally). Sweeps through
`parallel` and `submitit_local` start the next trial as soon as one ends (no batch barrier)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import LSTMLAB, TINY

pytestmark = pytest.mark.slow

# Tiny and on JAX (whose compiled programs are cached between processes).
JOBS = [*TINY, "trainer.epochs=1", "trainer.backend=jax"]
# The same with trainer.epochs left to the test.
JOBS_ANY_EPOCHS = [o for o in JOBS if not o.startswith("trainer.epochs=")]
PROGRESS = re.compile(r"^\[sweep (\S+)\] trial (\d+) (COMPLETE|PRUNED|FAIL) ", re.MULTILINE)


def lstmlab(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*LSTMLAB, *args], capture_output=True, text=True, timeout=timeout)


def all_runs() -> list:
    client = MlflowClient()
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000)


def sweep_records(study: str, storage: str, n_trials: int) -> tuple[list, object, list]:
    """The study's trials, its MLflow parent and children; checks what every such sweep must hold."""
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert sorted(t.number for t in trials) == list(range(n_trials))  # each number once
    assert all(t.state == TrialState.COMPLETE for t in trials)
    runs = all_runs()
    (parent,) = [r for r in runs if r.data.tags.get("optuna_study") == study]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(c.data.tags["optuna_trial"]) for c in children) == list(range(n_trials))
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing RUNNING, nothing failed
    return trials, parent, children


def test_a_multirun_with_the_joblib_launcher_on_a_fresh_store_records_each_job_once(project_dir):
    assert not (project_dir / "mlflow.db").exists()  # fresh: the jobs create the store together
    result = lstmlab("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *JOBS,
                     "variant=baseline,tanh,sgd")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = all_runs()
    assert sorted(r.data.tags["variant"] for r in runs) == ["baseline", "sgd", "tanh"]
    assert [r.info.status for r in runs] == ["FINISHED"] * 3
    assert len({r.data.tags["data_sha256"] for r in runs}) == 1


def test_a_sweep_with_the_joblib_launcher_runs_two_trials_at_a_time(project_dir):
    n_trials = 4
    result = lstmlab("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *JOBS,
                     "hydra/sweeper=lstmlab_optuna", "hydra.sweeper.study_name=side-by-side",
                     f"hydra.sweeper.n_trials={n_trials}", "model.dropout=interval(0,0.5)")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "; 2 at a time;" in result.stdout  # the sweeper's n_jobs=auto follows the launcher
    assert "trials run in batches of 2, each awaited whole: the launcher JoblibLauncher" in result.stdout
    assert sorted(int(n) for _, n, _ in PROGRESS.findall(result.stdout)) == list(range(n_trials))

    trials, parent, children = sweep_records("side-by-side", "sqlite:///mlruns/optuna.db", n_trials)
    assert len({t.params["model.dropout"] for t in trials}) == n_trials  # no draw repeated
    # Trials 0 and 1 were one batch: their runs overlapped in time, in two processes.
    first, second = sorted((c for c in children if c.data.tags["optuna_trial"] in "01"),
                           key=lambda c: c.info.start_time)
    assert second.info.start_time < first.info.end_time
    assert parent.data.tags["best_trial"] == str(min(trials, key=lambda t: t.value).number)


def _runs_training(db: Path) -> int:
    """RUNNING runs with an epoch logged, read straight from the SQLite file: an MLflow client
    here would take part in creating the store while the jobs create it."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as db_:
            return db_.execute("SELECT COUNT(DISTINCT r.run_uuid) FROM runs r JOIN metrics m ON "
                               "m.run_uuid = r.run_uuid WHERE r.status = 'RUNNING' AND "
                               "m.key = 'train_loss'").fetchone()[0]
    except sqlite3.Error:  # not there yet, or its tables not yet created
        return 0


def _proc_stats() -> dict[int, list[str]]:
    """Every process's /proc/PID/stat fields after its name: state, parent pid, process group, ..."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
    return stats


def _states_in_group(pgid: int) -> list[str]:
    """The states (R, S, Z, ...) of the processes still in process group `pgid` (Linux /proc)."""
    return [fields[0] for fields in _proc_stats().values() if int(fields[2]) == pgid]


def _wait_until_training(job: subprocess.Popen, db: Path, runs: int) -> None:
    deadline = time.time() + 180
    while time.time() < deadline and job.poll() is None:
        if _runs_training(db) == runs:
            return
        time.sleep(0.5)
    os.killpg(job.pid, signal.SIGKILL)
    raise AssertionError(f"{runs} job(s) never trained together: {job.communicate()[1][-3000:]}")


@pytest.mark.parametrize("number, send, code, said", [
    (signal.SIGINT, os.killpg, 130, "interrupted"),  # Ctrl-C as a terminal sends it: to the whole group
    (signal.SIGTERM, os.kill, 143, "terminated"),  # `kill`: to the command only, which passes it on
], ids=["ctrl-c", "sigterm"])
def test_a_stop_ends_every_parallel_job_as_killed_and_leaves_no_run_running(project_dir, number, send,
                                                                            code, said):
    # Three long jobs, two at a time.
    command = [*LSTMLAB, "train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *JOBS,
               "trainer.epochs=100000", "variant=baseline,tanh,sgd"]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        _wait_until_training(job, project_dir / "mlflow.db", 2)
        send(job.pid, number)
        _, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == code, err[-3000:]
    assert err.strip().splitlines()[-1] == f"lstmlab train: {said}" and "Traceback" not in err
    runs = all_runs()
    assert len(runs) == 2  # the third job never started
    assert {r.info.status for r in runs} == {"KILLED"}
    time.sleep(1)
    assert set(_states_in_group(job.pid)) <= {"Z"}  # every worker is gone (at most unreaped)


def _interrupted_while_training(command: list[str], project_dir: Path, training: int) -> str:
    """`command` started in a session of its own, Ctrl-C sent to it once `training` runs train; it
    must end as interrupted (130, one line, no traceback). Returns its stdout."""
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        _wait_until_training(job, project_dir / "mlflow.db", training)
        os.killpg(job.pid, signal.SIGINT)
        out, err = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130, err[-3000:]
    assert err.strip().splitlines()[-1] == "lstmlab train: interrupted" and "Traceback" not in err
    return out


def test_ctrl_c_in_a_sweep_one_job_at_a_time_queues_the_trial_again_and_stops(project_dir):
    # n_jobs=1: joblib runs the job in the command's own process, not in a worker.
    study = "one-at-a-time"
    command = [*LSTMLAB, "train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=1", *JOBS,
               "trainer.epochs=100000", "hydra/sweeper=lstmlab_optuna", f"hydra.sweeper.study_name={study}",
               "hydra.sweeper.n_trials=3", "model.dropout=interval(0,0.5)"]
    out = _interrupted_while_training(command, project_dir, training=1)
    assert f"[sweep {study}] killed: 0/3 trials" in out and not PROGRESS.findall(out)
    trials = optuna.load_study(study_name=study, storage="sqlite:///mlruns/optuna.db").get_trials()
    assert [(t.number, t.state) for t in trials] == [(0, TrialState.FAIL), (1, TrialState.WAITING)]
    assert "error" not in trials[0].user_attrs  # given back, not failed by the job
    assert trials[1].params == trials[0].params  # the same trial, queued again
    runs = all_runs()
    assert sorted((r.data.tags.get("optuna_trial", "parent"), r.info.status) for r in runs) == [
        ("0", "KILLED"), ("parent", "KILLED")]  # the parent and the one trial started: no next trial


def test_a_sweep_through_submitit_local_runs_its_trials_as_submitit_jobs(project_dir):
    n_trials = 2
    result = lstmlab("train", "-m", "hydra/launcher=submitit_local", "hydra.sweeper.n_jobs=2", *JOBS,
                     "hydra/sweeper=lstmlab_optuna", "hydra.sweeper.study_name=submitit",
                     f"hydra.sweeper.n_trials={n_trials}", "model.dropout=interval(0,0.5)",
                     "hydra.sweep.dir=experiments/sweeps/submitit")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_records("submitit", "sqlite:///mlruns/optuna.db", n_trials)
    # submitit ran them: one job folder with a log per task of the array
    logs = sorted(p.name for p in (project_dir / "experiments/sweeps/submitit/.submitit").glob("*/*_log.out"))
    assert len(logs) == n_trials, logs


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    return [child for child, fields in _proc_stats().items() if int(fields[1]) == pid]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_a_parallel_multirun_takes_its_workers_with_it(project_dir):
    # Three long jobs, two at a time; the multirun's process is killed outright (no handler runs).
    command = [*LSTMLAB, "train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *JOBS,
               "trainer.epochs=100000", "variant=baseline,tanh,sgd"]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        _wait_until_training(job, project_dir / "mlflow.db", 2)
        workers = [pid for pid in _children(job.pid)
                   if "popen_loky_posix" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 2
        job.kill()
        job.wait(timeout=60)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(pid) for pid in workers)  # gone within seconds, not left training
        time.sleep(3)  # ... and the third job was not started by a worker after its parent died
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(job.pid, signal.SIGKILL)
    runs = all_runs()
    assert sorted(r.data.tags["variant"] for r in runs) in (["baseline", "tanh"], ["baseline", "sgd"],
                                                            ["sgd", "tanh"])
    assert {r.info.status for r in runs} == {"KILLED"}  # each worker closed its run on the way out


# Trial 0 long, trials 1 and 2 short: the random sampler draws trial n with seed + n, and from
# seed 48 it draws 200, 1, 1 epochs.
UNEQUAL = ["hydra/sweeper=lstmlab_optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.seed=48",
           "hydra.sweeper.pruner=none", "hydra.sweeper.n_trials=3", "hydra.sweeper.n_jobs=2",
           "trainer.epochs=choice(1,200)", *JOBS_ANY_EPOCHS]  # 200: longer than start-up, idle or loaded


def _no_worker_waited(result: subprocess.CompletedProcess, study: str) -> None:
    """Trial 2 started as soon as one of trials 0 and 1 ended, while the other (the longer, as a
    rule, unless start-up under load delays the short one past it) still ran: in batches of two
    it would have waited for both."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert "; 2 at a time, the next as soon as one ends;" in result.stdout
    assert re.search(rf"\[sweep {study}\] finished: 3/3 trials .*; busy share \d\.\d\d;", result.stdout)
    trials, _, _ = sweep_records(study, "sqlite:///mlruns/optuna.db", 3)
    assert [t.params["trainer.epochs"] for t in trials] == [200, 1, 1]
    times = [(t.number, str(t.datetime_start), str(t.datetime_complete)) for t in trials]
    assert trials[2].datetime_start < max(t.datetime_complete for t in trials[:2]), times


def test_a_parallel_sweep_starts_the_next_trial_as_soon_as_a_worker_is_free(project_dir):
    result = lstmlab("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *UNEQUAL,
                     "hydra.sweeper.study_name=free-worker")
    _no_worker_waited(result, "free-worker")


def test_a_submitit_local_sweep_starts_the_next_trial_as_soon_as_a_job_ends(project_dir):
    result = lstmlab("train", "-m", "hydra/launcher=submitit_local", *UNEQUAL,
                     "hydra.sweeper.study_name=free-job", "hydra.sweep.dir=experiments/sweeps/free-job")
    _no_worker_waited(result, "free-job")
    logs = list((project_dir / "experiments/sweeps/free-job/.submitit").glob("*/*_log.out"))
    assert len(logs) == 3, logs  # one submitit job per trial


def test_ctrl_c_in_a_sweep_as_workers_free_up_leaves_nothing_running_and_a_resume_finishes(project_dir):
    study = "free-worker-stop"
    sweep = ["train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *JOBS_ANY_EPOCHS,
             "hydra/sweeper=lstmlab_optuna", f"hydra.sweeper.study_name={study}", "hydra.sweeper.n_trials=2",
             "model.dropout=interval(0,0.5)"]
    out = _interrupted_while_training([*LSTMLAB, *sweep, "trainer.epochs=100000"], project_dir, training=2)
    assert f"[sweep {study}] killed: 0/2 trials" in out
    runs = all_runs()
    assert sorted((r.data.tags.get("optuna_trial", "parent"), r.info.status) for r in runs) == [
        ("0", "KILLED"), ("1", "KILLED"), ("parent", "KILLED")]  # nothing RUNNING
    storage = "sqlite:///mlruns/optuna.db"
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert sorted(t.state.name for t in trials) == ["FAIL", "FAIL", "WAITING", "WAITING"]  # queued again

    # The resume in batches, as hydra.sweeper.async_trials=false asks (and says).
    resumed = lstmlab(*sweep, "trainer.epochs=1", "hydra.sweeper.async_trials=false")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "trials run in batches of 2, each awaited whole: hydra.sweeper.async_trials=false" in resumed.stdout
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    assert [t.state.name for t in trials].count("COMPLETE") == 2  # exactly n_trials
    assert {t.state for t in trials} == {TrialState.FAIL, TrialState.COMPLETE}
    assert {r.info.status for r in all_runs()} == {"KILLED", "FINISHED"}


def _stopped_while_training(command: list[str], project_dir: Path, training: int, number: int) -> tuple[str, float]:
    """`command` in a session of its own, `number` sent to it alone (as `kill` or a scheduler
    sends it) once `training` runs train; it must end with one line, no traceback and 130 or 143.
    Returns its stdout and the seconds from the signal to its end."""
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        _wait_until_training(job, project_dir / "mlflow.db", training)
        sent = time.monotonic()
        os.kill(job.pid, number)
        out, err = job.communicate(timeout=90)
        took = time.monotonic() - sent
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    said, code = ("terminated", 143) if number == signal.SIGTERM else ("interrupted", 130)
    assert job.returncode == code, err[-3000:]
    assert err.strip().splitlines()[-1] == f"lstmlab train: {said}" and "Traceback" not in err, err[-3000:]
    time.sleep(1)
    assert set(_states_in_group(job.pid)) <= {"Z"}  # no controller or task left training
    return out, took


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stop_ends_every_submitit_job_of_a_multirun_as_killed(project_dir, number):
    """Issue 23: after SIGTERM both submitit_local jobs trained all their epochs and ended FINISHED,
    and the command exited 143 only then. Now the jobs stop after their batch, their runs KILLED."""
    command = [*LSTMLAB, "train", "-m", "hydra/launcher=submitit_local", *JOBS, "trainer.epochs=100000",
               "trainer.seed=1,2", "hydra.sweep.dir=experiments/sweeps/stopped"]
    _, took = _stopped_while_training(command, project_dir, 2, number)
    assert took < 60  # seconds, not the jobs' 100000 epochs (a timing on a loaded machine: generous)
    runs = all_runs()
    assert sorted(r.data.params["trainer.seed"] for r in runs) == ["1", "2"]
    assert {r.info.status for r in runs} == {"KILLED"}


def test_sigterm_to_a_sweep_through_submitit_stops_its_trials_and_queues_them_again(project_dir):
    study = "submitit-stop"
    command = [*LSTMLAB, "train", "-m", "hydra/launcher=submitit_local", *JOBS_ANY_EPOCHS, "trainer.epochs=100000",
               "hydra/sweeper=lstmlab_optuna", f"hydra.sweeper.study_name={study}", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.n_jobs=2", "model.dropout=interval(0,0.5)", "hydra.sweep.dir=experiments/sweeps/stop"]
    out, _ = _stopped_while_training(command, project_dir, 2, signal.SIGTERM)
    assert f"[sweep {study}] killed: 0/2 trials" in out
    runs = all_runs()
    assert sorted((r.data.tags.get("optuna_trial", "parent"), r.info.status) for r in runs) == [
        ("0", "KILLED"), ("1", "KILLED"), ("parent", "KILLED")]
    trials = optuna.load_study(study_name=study, storage="sqlite:///mlruns/optuna.db").get_trials()
    assert sorted(t.state.name for t in trials) == ["FAIL", "FAIL", "WAITING", "WAITING"]  # queued again
