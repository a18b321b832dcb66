"""A fresh MLflow store under concurrent first use, and a store left half-migrated (issue 10, item 2)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import sqlalchemy

from conftest import TINY, tiny_config
from lstmlab.errors import LstmlabError
from lstmlab.tracking.open import open_store

TRAIN = [sys.executable, "-m", "lstmlab.cli", "train", *TINY, "trainer.epochs=1", "model.units=[8]"]


def statuses(uri: str) -> list[str]:
    runs = mlflow.MlflowClient(uri).search_runs(
        [e.experiment_id for e in mlflow.MlflowClient(uri).search_experiments()])
    return [run.info.status for run in runs]


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
