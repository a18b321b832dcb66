"""`lstmlab ui`: the MLflow server over the project's store, found through its REST API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import pytest

from conftest import LSTMLAB
from lstmlab.commands.ui import command
from lstmlab.errors import LstmlabError

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120  # the server imports MLflow and migrates the store: slow on a busy machine


def test_the_command_serves_the_current_store_on_loopback(project_dir, monkeypatch):
    store = f"sqlite:///{project_dir / 'mlflow.db'}"
    line = command(["--port", "5001"])
    assert line[:4] == [sys.executable, "-m", "mlflow", "ui"]
    assert line[line.index("--backend-store-uri") + 1] == store
    assert line[line.index("--host") + 1] == "127.0.0.1"
    assert line[-2:] == ["--port", "5001"]
    assert command(["--host", "0.0.0.0"]).count("--host") == 1  # the user's choice wins

    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # MLflow's default: sqlite:///mlflow.db here
    default = command([])
    assert default[default.index("--backend-store-uri") + 1] == f"sqlite:///{project_dir / 'mlflow.db'}"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    with pytest.raises(LstmlabError, match="is a tracking server"):
        command([])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(url: str, body: dict | None = None) -> dict | str:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return json.loads(text) if body is not None else text


def test_lstmlab_ui_starts_an_mlflow_server_whose_rest_api_finds_the_runs(project_dir):
    mlflow.set_experiment("lstmlab")
    with mlflow.start_run(run_name="baseline", tags={"variant": "baseline", "baseline": "true"}) as base:
        mlflow.log_params({"model.units": "[50, 50]", "trainer.seed": "1"})
        mlflow.log_metric("val_rmse", 1.5)
    with mlflow.start_run(run_name="tanh", tags={"variant": "tanh", "baseline": "false"}) as other:
        mlflow.log_metric("val_rmse", 1.25)
    experiment_id = base.info.experiment_id

    port = free_port()
    log = open(project_dir / "ui.log", "w")
    server = subprocess.Popen(
        [*LSTMLAB, "ui", "--port", str(port), "--workers", "1"],
        cwd=project_dir, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the server's workers go down with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, (project_dir / "ui.log").read_text()
            try:
                if call(f"{url}/health").strip() == "OK":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the server did not answer /health in time"
            time.sleep(0.5)

        found = call(f"{url}/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})
        by_id = {run["info"]["run_id"]: run for run in found["runs"]}
        assert set(by_id) == {base.info.run_id, other.info.run_id}
        assert by_id[base.info.run_id]["info"]["run_name"] == "baseline"

        baseline = call(f"{url}/api/2.0/mlflow/runs/search",
                        {"experiment_ids": [experiment_id], "filter": "tags.baseline = 'true'"})
        [run] = baseline["runs"]
        assert run["info"]["run_id"] == base.info.run_id
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert params["model.units"] == "[50, 50]"
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]}["val_rmse"] == 1.5

        # SIGTERM to lstmlab alone (not its group): it stops the server and waits for it
        tree = descendants(server.pid)
        assert tree, "lstmlab ui started no server process"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        assert [pid for pid in tree if alive(pid)] == [], "the server outlived lstmlab ui"
    finally:
        stop(server)
        log.close()


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it started it), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue
