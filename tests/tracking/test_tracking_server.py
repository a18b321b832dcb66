"""Shared state across machines, on one machine: a real `mlflow server` on PostgreSQL (with a local
artifact folder) and the Optuna study on PostgreSQL; two sweep workers reach both only through
their URLs, as workers on other machines would. Then `compare` and `rerun` through the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import LSTMLAB, TINY, postgres_databases, use_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(backend_url: str, artifacts: Path, log: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on `port` (a free loopback port by default); its URL once /health answers."""
    port = port or free_port()
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow_cli), "server", "--backend-store-uri", backend_url.replace("postgresql://", "postgresql+psycopg2://"),
         "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server, url
        except OSError:
            time.sleep(0.5)
    stop_server(server)
    raise AssertionError(f"mlflow server did not answer in 120 s: {log.read_text()[-3000:]}")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_two_workers_share_a_tracking_server_and_a_study_on_postgresql(tmp_path, monkeypatch):
    n_trials = 3
    with postgres_databases("lstmlab_mlflow", "lstmlab_optuna") as (mlflow_db, optuna_db):
        server, url = start_server(mlflow_db, tmp_path / "artifacts", tmp_path / "server.log")
        try:
            use_store(url, monkeypatch)  # the workers (environment) and this test's client
            command = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY, "trainer.epochs=1",
                       "trainer.backend=jax", "hydra.sweeper.study_name=shared",
                       f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.storage={optuna_db}",
                       "model.dropout=interval(0,0.5)"]
            workers = []
            for name in ("worker-a", "worker-b"):  # folders of their own, as on two machines
                (tmp_path / name).mkdir()
                workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                text=True, cwd=tmp_path / name))
            outputs = [worker.communicate(timeout=300) for worker in workers]
            for worker, (_, err) in zip(workers, outputs):
                assert worker.returncode == 0, err[-3000:]

            study = optuna.load_study(study_name="shared",
                                      storage=optuna_db.replace("postgresql://", "postgresql+psycopg2://"))
            assert sorted(t.number for t in study.trials) == list(range(n_trials))
            assert all(t.state == TrialState.COMPLETE for t in study.trials)

            client = MlflowClient()
            experiment = client.get_experiment_by_name("lstmlab")
            runs = client.search_runs([experiment.experiment_id])
            (parent,) = [r for r in runs if r.data.tags.get("optuna_study") == "shared"]
            children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            assert sorted(int(c.data.tags["optuna_trial"]) for c in children) == list(range(n_trials))
            assert {r.info.status for r in runs} == {"FINISHED"}
            assert parent.data.tags["best_trial"] == str(study.best_trial.number)
            # Artifacts went through the server into its folder, and come back through it.
            child = min(children, key=lambda c: c.data.metrics["val_rmse"])
            config = Path(client.download_artifacts(child.info.run_id, "config.yaml", str(tmp_path)))
            assert "dropout: " + child.data.params["model.dropout"] in config.read_text()
            assert any((tmp_path / "artifacts").rglob("predictions.csv"))

            compared = subprocess.run([*LSTMLAB, "compare", "--sweep", "shared", "--baseline", child.info.run_id],
                                      capture_output=True, text=True, cwd=tmp_path, timeout=300)
            assert compared.returncode == 0, compared.stderr[-3000:]
            assert f"{n_trials} runs" in compared.stdout
            (runs_csv,) = (tmp_path / "experiments" / "reports").glob("*/runs.csv")
            assert len(runs_csv.read_text().strip().splitlines()) == 1 + n_trials

            rerun = subprocess.run([*LSTMLAB, "rerun", child.info.run_id[:8], "--check"],
                                   capture_output=True, text=True, cwd=tmp_path, timeout=300)
            assert rerun.returncode == 0, rerun.stderr[-3000:] + rerun.stdout[-3000:]
            (again,) = client.search_runs([experiment.experiment_id], f"tags.rerun_of = '{child.info.run_id}'")
            assert again.info.status == "FINISHED"
            assert again.data.metrics["val_rmse"] == pytest.approx(child.data.metrics["val_rmse"], rel=1e-6)
        finally:
            stop_server(server)
