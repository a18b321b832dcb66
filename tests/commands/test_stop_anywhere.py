"""Ctrl-C and SIGTERM stop a command within seconds at every stage (issue 23, item 2), sent by
real signals to real processes: while it imports, reads its data, reads a record, computes a
comparison. Each stage writes nothing, so the stop comes at once, and leaves no run behind; before,
the first signal waited for the next safe point (a batch, after a run had been started), or for
the end of `compare`'s work."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf

from comparison.compare_store import Store, final_metrics
from conftest import LSTMLAB, TINY, make_config
from lstmlab.pipeline.params import run_config

pytestmark = pytest.mark.slow

SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def until(condition, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the command ended before {what}: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)


def handles_sigterm(pid: int) -> bool:
    """lstmlab's handler is set (before it, SIGTERM would kill the process as by default)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & SIGTERM_BIT)


def has_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # a descriptor closed while listed
        return False


def stop(process: subprocess.Popen, number: int = signal.SIGTERM) -> tuple[str, float]:
    """Signal `number` to the command alone; its stderr and the seconds it took to end."""
    sent = time.monotonic()
    process.send_signal(number)
    try:
        _, err = process.communicate(timeout=60)  # a command that goes on to train would time out
    finally:
        process.kill()
    took = time.monotonic() - sent
    said, code = ("terminated", 143) if number == signal.SIGTERM else ("interrupted", 130)
    assert process.returncode == code, err[-3000:]
    assert err.strip().splitlines()[-1] == f"lstmlab {process.args[3]}: {said}" and "Traceback" not in err, err
    return err, took


def runs() -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def big_csv(folder: Path, rows: int = 200_000) -> Path:
    """A daily price table a few seconds long to read (0.6 million lines would be a few more)."""
    path = folder / "big.csv"
    prices = 1000 + np.cumsum(np.random.default_rng(0).normal(size=rows)) * 0.01
    pd.DataFrame({"Date": pd.date_range("1700-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
                  "Close": prices.round(4)}).to_csv(path, index=False)
    return path


ON_CSV = [o for o in TINY if not o.startswith(("data=", "data.rows="))]  # TINY's settings, on data=csv


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*LSTMLAB, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_while_train_starts_up_stops_it_at_once_with_no_run(project_dir, number):
    """Imports, Hydra's composition, the config checks: the signal right after lstmlab's handler is set."""
    process = start("train", *TINY)
    until(lambda: handles_sigterm(process.pid), "set its handler", process)
    _, took = stop(process, number)
    assert took < 30 and runs() == []


@pytest.mark.parametrize("command", [["train", *TINY], ["compare"], ["forecast", "0" * 32]], ids=lambda c: c[0])
def test_a_signal_while_a_tracking_server_keeps_the_command_waiting_stops_it_at_once(project_dir, monkeypatch, command):
    """A server that accepts the connection and never answers, with LSTMLAB_SERVER_TIMEOUT=600:
    the command waits in its first request, which no safe point ends; the signal does."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("LSTMLAB_SERVER_TIMEOUT", "600")
        process = start(*command)
        server.settimeout(120)
        connection, _ = server.accept()  # the command asks, and waits
        with connection:
            _, took = stop(process)
    assert took < 30


def test_a_signal_while_the_data_are_read_stops_train_and_rerun_at_once_with_no_run(project_dir):
    data = big_csv(project_dir)
    process = start("train", "data=csv", f"data.path={data}", *ON_CSV)
    until(lambda: has_open(process.pid, data), "read its data", process)
    _, took = stop(process)
    assert took < 30 and runs() == []  # before: it read on, imported Keras, started a run, then stopped

    # The same for a rerun of a run on those data: its record read, then its data (a record made
    # through MLflow's client: the rerun cannot tell it from one of a run that trained).
    client = MlflowClient()
    run_id = client.create_run(client.create_experiment("records"), run_name="baseline").info.run_id
    cfg = make_config("data=csv", f"data.path={data}", *ON_CSV)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.yaml").write_text(OmegaConf.to_yaml(run_config(cfg)))
        client.log_artifact(run_id, str(Path(folder) / "config.yaml"))
    client.set_terminated(run_id, "FINISHED")
    process = start("rerun", run_id)
    until(lambda: has_open(process.pid, data), "read the recorded run's data", process)
    _, took = stop(process)
    assert took < 30 and [r.info.run_id for r in runs()] == [run_id]  # no rerun was started


def test_a_signal_while_compare_computes_stops_it_at_once_with_no_report(project_dir, monkeypatch):
    """compare, which writes only its report at the end, used to finish its whole work first."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(project_dir / "cache"))
    store = Store()
    rng = np.random.default_rng(1)
    for variant in ("baseline", *(f"v{i}" for i in range(11))):  # 12 groups × 5 seeds, a predictions table each
        for seed in range(1, 6):
            store.log(variant, seed, final_metrics(1.0 + rng.random(), seed),
                      errors=rng.normal(scale=1 + rng.random(), size=60))
    process = subprocess.Popen([*LSTMLAB, "compare"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "XDG_CACHE_HOME": str(project_dir / "cache")})
    cache = project_dir / "cache" / "lstmlab" / "predictions"
    until(lambda: cache.is_dir() and any(cache.iterdir()), "read the runs' predictions", process)
    _, took = stop(process)
    assert took < 30
    assert not [r for r in runs() if r.data.tags.get("lstmlab.report")]  # no report run
    assert not (project_dir / "experiments" / "reports").exists() or not any(
        p for p in (project_dir / "experiments" / "reports").iterdir() if not p.name.startswith("."))
