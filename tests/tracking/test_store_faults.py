"""Stores under faults (issue 10): a fresh store under concurrent first use and one left
half-migrated (item 2), a tracking server that does not answer (item 4), read-only stores and
an unwritable Optuna storage (item 6)."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
import sqlalchemy

from conftest import LSTMLAB, TINY, tiny_config
from lstmlab.errors import LstmlabError
from lstmlab.tracking.open import open_store
from lstmlab.tracking.reach import check_server

TRAIN = [*LSTMLAB, "train", *TINY, "trainer.epochs=1", "model.units=[8]"]


def statuses(uri: str) -> list[str]:
    runs = mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()])
    return [run.info.status for run in runs]


@pytest.mark.slow
def test_three_runs_started_together_on_a_fresh_store(project_dir):
    """Three `lstmlab train` processes started at once on a new sqlite store all finish, and the
    store works afterwards (without the lock MLflow's migrations race and break it for good)."""
    from lstmlab.pipeline.experiment import run_experiment

    assert not (project_dir / "mlflow.db").exists()
    processes = [subprocess.Popen(TRAIN, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    uri = f"sqlite:///{project_dir / 'mlflow.db'}"
    assert statuses(uri) == ["FINISHED"] * 3
    run_experiment(tiny_config("trainer.epochs=1", "model.units=[8]"))  # a fourth, afterwards
    assert statuses(uri) == ["FINISHED"] * 4


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_runs_that_log_the_same_new_dataset_at_once_all_record_it(project_dir, backend):
    """MLflow's store looks a dataset up, then inserts it: eight runs logging one dataset that their
    experiment lacks all insert it (without the retry most of them fail on the table's key, as a
    sweep worker on a shared server did). All eight record it, and the experiment holds it once."""
    import pandas as pd

    from conftest import postgres_databases
    from lstmlab.pipeline.keras_side.track import log_input

    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            uri = f"sqlite:///{project_dir / 'race.db'}"
        else:
            (database,) = stack.enter_context(postgres_databases("lstmlab_race"))
            uri = database.replace("postgresql://", "postgresql+psycopg2://")
        mlflow.set_tracking_uri(uri)
        experiment_id = mlflow.create_experiment("race")
        dataset = mlflow.data.from_pandas(pd.DataFrame({"close": [1.0, 2.0]}), name="prices", digest="0123abcd")
        together = threading.Barrier(8)
        failures: list[BaseException] = []

        def one_run() -> None:
            with mlflow.start_run(experiment_id=experiment_id):  # MLflow's active run is per thread
                together.wait()
                try:
                    log_input(dataset, context="training")
                except BaseException as error:  # noqa: BLE001 - collected for the assert below
                    failures.append(error)

        threads = [threading.Thread(target=one_run) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        runs = mlflow.search_runs([experiment_id], output_format="list")
        assert len(runs) == 8
        assert [[d.dataset.digest for d in run.inputs.dataset_inputs] for run in runs] == [["0123abcd"]] * 8
        engine = sqlalchemy.create_engine(uri)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM datasets").scalar() == 1
        engine.dispose()


def interrupted_migration(path: Path, migrated_to: str = "a8c4a736bde6") -> None:
    """The state concurrent first runs left a store in before the lock (read from such a store):
    MLflow's migrations applied up to a8c4a736bde6, and the copy `_alembic_tmp_latest_metrics`
    that the next one (39d1c3be5f05, a batch rebuild of latest_metrics) makes first, left behind."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    config = _get_alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, migrated_to)
        connection.exec_driver_sql("CREATE TABLE _alembic_tmp_latest_metrics AS SELECT * FROM latest_metrics")
    engine.dispose()


@pytest.mark.slow
def test_a_half_migrated_store_without_runs_is_created_again(project_dir, caplog):
    path = project_dir / "broken" / "mlflow.db"
    path.parent.mkdir()
    interrupted_migration(path)
    uri = f"sqlite:///{path}"
    with pytest.raises(Exception, match="_alembic_tmp_latest_metrics already exists"):
        mlflow.MlflowClient(uri)  # MLflow alone: broken for good
    assert open_store(uri) == uri
    assert "holds no run: creating it again" in caplog.text
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("after"))
    client.set_terminated(run.info.run_id)
    assert statuses(uri) == ["FINISHED"]


@pytest.mark.slow
def test_a_half_migrated_store_with_runs_is_left_alone_with_one_line(project_dir):
    path = project_dir / "kept" / "mlflow.db"
    uri = f"sqlite:///{path}"
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("precious"))
    with sqlite3.connect(path) as db:  # the same interruption on a store that holds a run
        db.execute("UPDATE alembic_version SET version_num = 'a8c4a736bde6'")
        db.execute("DROP TABLE jobs")  # a table of a later migration: MLflow migrates again
        db.execute("CREATE TABLE _alembic_tmp_latest_metrics AS SELECT * FROM latest_metrics")
    # As in a new process: MLflow's cached store and engine for this URI are forgotten.
    mlflow.store.tracking.sqlalchemy_store.SqlAlchemyStore._engine_map.clear()
    mlflow.tracking._tracking_service.utils._tracking_store_registry._get_store_with_resolved_uri.cache_clear()
    with pytest.raises(LstmlabError) as error:
        open_store(uri)
    message = str(error.value)
    assert "holds runs" in message and "_alembic_tmp_latest_metrics" in message
    assert f"mlflow db upgrade {uri}" in message and "\n" not in message
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT run_uuid FROM runs").fetchall() == [(run.info.run_id,)]


def free_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_dead_tracking_server_is_one_line_for_every_command(project_dir):
    """Not four minutes of retries and a traceback: every command says it in a line."""
    uri = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    commands = {
        "train": TRAIN[len(LSTMLAB):],
        "sweep": ["train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY, "model.dropout=interval(0,0.5)"],
        "compare": ["compare"],
        "rerun": ["rerun", "0123456789abcdef"],
        "forecast": ["forecast", "0123456789abcdef"],
    }
    processes = {name: subprocess.Popen([*LSTMLAB, *args], env=env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE) for name, args in commands.items()}
    for name, process in processes.items():
        _, err = process.communicate(timeout=120)
        command = "train" if name == "sweep" else name
        assert process.returncode == 2, (name, err[-2000:])
        assert err.strip().splitlines()[-1].startswith(
            f"lstmlab {command}: error: the MLflow tracking server {uri} does not answer"), (name, err[-2000:])
        assert "Traceback" not in err
    assert not Path("mlruns/optuna.db").exists()  # the sweep asked for it before opening a study



def test_a_tracking_server_that_answered_is_not_asked_again_in_the_process():
    """A run checks the server before its data (nothing written) and again when it opens the store."""
    asked = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Health) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        uri = f"http://127.0.0.1:{server.server_port}"
        check_server(uri)
        check_server(uri)
        server.shutdown()
    assert asked == ["/health"]

@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Really read-only, for root too (which ignores modes): immutable (chattr +i) as root."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "-R", "+i", *map(str, paths)], capture_output=True).returncode:
            pytest.skip("root without chattr +i cannot make a file read-only here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-R", "-i", *map(str, paths)], check=True)
        return
    modes = {p: p.stat().st_mode for path in paths for p in [path, *path.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & ~0o222)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@pytest.mark.slow
def test_an_optuna_storage_that_cannot_be_written_is_one_line_and_nothing_is_written(project_dir):
    Path("locked").mkdir()
    command = [*TRAIN[:4], "-m", "hydra/sweeper=lstmlab_optuna", "model.dropout=interval(0,0.5)",
               "hydra.sweeper.storage=sqlite:///locked/optuna.db", *TRAIN[4:]]
    with read_only(Path("locked")):
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"lstmlab train: error: cannot write the Optuna storage sqlite:///{project_dir}/locked/optuna.db: ")
    assert list(Path("locked").iterdir()) == [] and not Path("mlflow.db").exists()


@pytest.mark.slow
def test_a_read_only_mlflow_db_or_mlruns_stops_the_run_before_it_starts(project_dir, monkeypatch):
    """What `lstmlab train` turns into one line (LstmlabError): before the run, not after training."""
    from lstmlab.pipeline.experiment import run_experiment

    kept_uri = f"sqlite:///{project_dir / 'kept' / 'mlflow.db'}"
    kept = mlflow.MlflowClient(kept_uri)
    kept_run = kept.create_run(kept.create_experiment("lstmlab")).info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", kept_uri)
    with read_only(project_dir / "kept" / "mlflow.db"), pytest.raises(LstmlabError) as error:
        run_experiment(tiny_config("trainer.epochs=1", "model.units=[4]"))
    assert str(error.value) == (f"the MLflow store {project_dir}/kept/mlflow.db is read-only (the file "
                                "cannot be written): check the permissions, or point tracking.uri (or "
                                "MLFLOW_TRACKING_URI) at a writable store")
    assert [run.info.run_id for run in kept.search_runs([kept.get_run(kept_run).info.experiment_id])] \
        == [kept_run]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_dir / 'mlflow.db'}")
    Path("mlruns").mkdir()
    with read_only(Path("mlruns")), pytest.raises(LstmlabError, match=f"the MLflow artifact folder "
                                                  f"{project_dir}/mlruns is read-only"):
        run_experiment(tiny_config("trainer.epochs=1", "model.units=[4]"))
    assert statuses(f"sqlite:///{project_dir / 'mlflow.db'}") == []  # no run half-written
