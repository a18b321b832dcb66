"""A store that fails in the middle of a run (issue 15): a real `mlflow server` killed, a tmpfs
filled up, a SQLite file locked by another process. Each ends the run with one line naming the
true cause, and the run is closed: now, or by the next command (this process's next job too)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from test_interrupts import ENDLESS
from test_tracking_server import free_port, start_server, stop_server

from conftest import LSTMLAB, TINY, tiny_config, use_store
from lstmlab.errors import LstmlabError
from lstmlab.tracking.orphans import CLOSED, PID
from lstmlab.tracking.reach import HTTP_DEFAULTS, bound_requests, quick_requests

LEFT = "it is left RUNNING for now: the next lstmlab command that reaches the store closes it"


def start_training(cwd: Path, uri: str) -> subprocess.Popen:
    """`lstmlab train` for ever on the store `uri`, returned once its third epoch started (two
    epochs' metrics recorded)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}
    train = subprocess.Popen(ENDLESS, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for line in train.stdout:
        if line.startswith("Epoch 3/"):
            return train
    raise AssertionError(f"training ended before its third epoch: {train.communicate()[1][-3000:]}")


def one_error_line(process: subprocess.Popen) -> str:
    """The process's only stderr line, once it ended with exit status 2 (bounded: no hang)."""
    _, err = process.communicate(timeout=180)
    lines = err.strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1, err[-3000:]
    return lines[0]


def all_runs(uri: str) -> list:
    client = MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def next_command(cwd: Path, uri: str) -> None:
    """A next lstmlab command on the store (its result does not matter: it opens the store first)."""
    subprocess.run([*LSTMLAB, "compare"], cwd=cwd, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                   capture_output=True, timeout=300)


@pytest.mark.slow
def test_a_tracking_server_killed_mid_run_stops_the_run_in_one_line_and_the_next_command_closes_it(tmp_path):
    """Before: the run hung 8 minutes in MLflow's retries, then 190 lines of traceback."""
    backend, port = f"sqlite:///{tmp_path / 'server.db'}", free_port()
    server, url = start_server(backend, tmp_path / "artifacts", tmp_path / "server.log", port)
    try:
        train = start_training(tmp_path, url)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        line = one_error_line(train)
        server, _ = start_server(backend, tmp_path / "artifacts", tmp_path / "server.log", port)
        (run,) = all_runs(url)
        assert line == (f"lstmlab train: error: run {run.info.run_id} stopped: the MLflow tracking server {url} stopped "
                        f"answering (connection refused); {LEFT}")
        assert run.info.status == "RUNNING"
        assert len(MlflowClient(url).get_metric_history(run.info.run_id, "train_loss")) >= 2  # finished epochs kept
        next_command(tmp_path, url)
        closed = MlflowClient(url).get_run(run.info.run_id)
        assert closed.info.status == "KILLED"
        assert closed.data.tags[CLOSED].startswith(f"process {train.pid} ")
    finally:
        stop_server(server)


@pytest.mark.slow
def test_the_next_job_of_the_same_process_closes_the_run_its_dead_server_left(tmp_path, monkeypatch):
    """A multirun's next job, a sweep's next trial: the process that left the run lives on, so the
    run is not an orphan of a dead process; the process closes it itself when the server is back."""
    from lstmlab.pipeline.experiment import run_experiment
    from lstmlab.tracking.open import open_store

    backend, port = f"sqlite:///{tmp_path / 'server.db'}", free_port()
    server, url = start_server(backend, tmp_path / "artifacts", tmp_path / "server.log", port)
    use_store(url, monkeypatch)

    def kill_server(step: int, logs: dict) -> bool:
        if step == 2:  # after the second epoch's metrics: the third's find no server
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        return False

    try:
        with pytest.raises(LstmlabError) as error:
            run_experiment(tiny_config("trainer.epochs=5", "model.units=[4]"), epoch_hooks=[kill_server])
        assert "stopped: the MLflow tracking server" in str(error.value) and "left RUNNING" in str(error.value)
        with pytest.raises(LstmlabError, match=f"the MLflow tracking server {url} does not answer"):
            open_store(url)  # the next job while the server is still gone: one line, at once
        server, _ = start_server(backend, tmp_path / "artifacts", tmp_path / "server.log", port)
        (run,) = all_runs(url)
        assert run.info.status == "RUNNING" and run.data.tags[PID] == str(os.getpid())  # alive: no orphan
        open_store(url)  # what the next job does first
        closed = MlflowClient(url).get_run(run.info.run_id)
        assert closed.info.status == "FAILED"
        assert closed.data.tags[CLOSED] == (f"the MLflow tracking server {url} stopped answering (connection refused); "
                                            "closed when the store answered again")
        assert [m.step for m in MlflowClient(url).get_metric_history(run.info.run_id, "val_rmse")] == [1, 2]
    finally:
        stop_server(server)


def test_mlflow_http_bounds_are_defaults_the_user_can_override(monkeypatch):
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")  # the user's own
    bound_requests()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"
    with quick_requests():  # closing a run after its server failed: one try, 3 s
        assert (os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"], os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"]) == ("0", "3")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "60"


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "64m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` (needs root, or a container that allows mounts)."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here to fill up: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@pytest.mark.slow
def test_a_disk_that_fills_up_mid_run_is_one_line_naming_it_and_the_next_command_closes_the_run(tmp_path):
    """Before: 497 lines of traceback (and "--- Logging error ---" from the log file on the full
    disk), the run left RUNNING. The store, its artifacts and Hydra's folders share the disk."""
    with small_disk(tmp_path / "disk") as disk:
        uri = f"sqlite:///{disk / 'mlflow.db'}"
        train = start_training(disk, uri)
        filler = fill(disk)
        line = one_error_line(train)
        (run,) = all_runs(uri)
        assert re.fullmatch(re.escape(f"lstmlab train: error: run {run.info.run_id} stopped: no space left on the "
                                      f"device of {disk / 'mlflow.db'} (") + r"\d+ k?B free\); "
                            + re.escape(f"{LEFT}; free some space there, then run again"), line)
        again = subprocess.Popen([*LSTMLAB, "train", *TINY], cwd=disk, env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                                 text=True, stderr=subprocess.PIPE)
        assert re.fullmatch(  # Hydra cannot write its folder: no traceback either
            re.escape(f"lstmlab train: error: no space left on a device lstmlab writes to (the working directory {disk}: ")
            + r"\d+ k?B free\): free some space there, then run again", one_error_line(again))
        filler.unlink()
        assert MlflowClient(uri).get_run(run.info.run_id).info.status == "RUNNING"
        next_command(disk, uri)
        closed = MlflowClient(uri).get_run(run.info.run_id)
        assert closed.info.status == "KILLED" and closed.data.tags[CLOSED].startswith(f"process {train.pid} ")
        assert len(MlflowClient(uri).get_metric_history(run.info.run_id, "train_loss")) >= 2


HOLD = "import sqlite3, sys; db = sqlite3.connect(sys.argv[1], isolation_level=None); db.execute('BEGIN EXCLUSIVE'); " \
       "print('locked', flush=True); sys.stdin.read()"


@contextlib.contextmanager
def held_lock(database: Path) -> Iterator[subprocess.Popen]:
    """Another process holding a write lock on `database` (as a `sqlite3` shell in a transaction)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def locked_line(database: Path, holder: subprocess.Popen) -> str:
    """The lock's part of the line, as a pattern: the holder's command line is cut at 80 characters."""
    return (re.escape(f"the MLflow store {database} is locked by another process (pid {holder.pid}: {sys.executable} -c ")
            + r"import sqlite3, sys; db = [^)]*\.\.\.\), which did not release it while MLflow waited")


FIX_LOCK = re.escape("end that process's transaction (or the process), then run again")


@pytest.mark.slow
def test_a_locked_store_at_start_is_one_line_naming_the_lock_and_its_holder(project_dir):
    """Before: after 19 s, "not an MLflow store ... move the file aside": the wrong cause, and
    advice that would hide every run."""
    database = project_dir / "mlflow.db"
    client = MlflowClient(f"sqlite:///{database}")
    kept = client.create_run(client.create_experiment("lstmlab")).info.run_id
    with held_lock(database) as holder:
        train = subprocess.Popen([*LSTMLAB, "train", *TINY], text=True, stderr=subprocess.PIPE)
        assert re.fullmatch(f"lstmlab train: error: {locked_line(database, holder)}: {FIX_LOCK}", one_error_line(train))
    assert [run.info.run_id for run in all_runs(f"sqlite:///{database}")] == [kept]


@pytest.mark.slow
def test_a_lock_that_arrives_mid_run_is_one_line_and_the_next_command_closes_the_run(project_dir):
    """Before: 139 lines of traceback."""
    database, uri = project_dir / "mlflow.db", os.environ["MLFLOW_TRACKING_URI"]
    train = start_training(project_dir, uri)
    with held_lock(database) as holder:
        line = one_error_line(train)
    (run,) = all_runs(uri)
    assert re.fullmatch(f"lstmlab train: error: run {run.info.run_id} stopped: {locked_line(database, holder)}; "
                        f"{re.escape(LEFT)}; {FIX_LOCK}", line)
    assert run.info.status == "RUNNING"
    next_command(project_dir, uri)
    assert MlflowClient(uri).get_run(run.info.run_id).info.status == "KILLED"


@pytest.mark.slow
def test_a_store_made_read_only_mid_run_is_one_line_and_the_next_command_closes_the_run(project_dir):
    """SQLite says "disk I/O error" when its file turns immutable: the line says what it is."""
    from test_store_faults import read_only

    if os.geteuid() != 0:
        pytest.skip("chmod does not stop a process that has the file open; chattr +i (root) does")
    database, uri = project_dir / "mlflow.db", os.environ["MLFLOW_TRACKING_URI"]
    train = start_training(project_dir, uri)
    with read_only(database):
        line = one_error_line(train)
    (run,) = all_runs(uri)
    assert line == (f"lstmlab train: error: run {run.info.run_id} stopped: the MLflow store {database} became read-only "
                    f"(the file cannot be written); {LEFT}; check the permissions, or point tracking.uri (or "
                    "MLFLOW_TRACKING_URI) at a writable store")
    next_command(project_dir, uri)
    assert MlflowClient(uri).get_run(run.info.run_id).info.status == "KILLED"
