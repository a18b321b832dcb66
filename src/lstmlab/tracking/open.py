"""Opening the MLflow store for a command: the URI set for the process, the store made ready.

Every command reaches MLflow through `open_store` (`use_store` for runs and sweeps,
`use_current_store` for compare, rerun, forecast and ui: both here), so what a store needs
before its first use is done in one place, once per process: a server that does not answer is
said in seconds (`reach.py`), a SQLite store's schema is set up by one process at a time
(`schema.py`), and runs that dead processes of this host left RUNNING are closed (`orphans.py`).
A store that fails here (locked, full, a server gone) is said in one line (`faults.py`); runs
this process could not close when their store failed are closed at every opening, not only the
first (`orphans.close_left`).
"""

from __future__ import annotations

import logging
import os

import mlflow
from mlflow.entities import Experiment
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from lstmlab import interrupts
from lstmlab.sqlite_files import sqlite_file
from lstmlab.tracking import faults
from lstmlab.tracking.orphans import close_left, close_orphans, left_running
from lstmlab.tracking.reach import check_server, forget_server
from lstmlab.tracking.schema import ensure_schema
from lstmlab.tracking.uris import usable, use_tracking_uri
from lstmlab.tracking.writable import check_artifacts_writable, check_store_writable

log = logging.getLogger(__name__)

_opened: set[str] = set()  # stores this process has made ready


def open_store(uri: str | None) -> str:
    """Point MLflow at `uri` (None: MLflow's default store) and make it ready; the URI in use.

    Set explicitly because MLflow keeps the last URI set in a process, and None must not
    inherit it. Setting a schema up and closing runs are writes: a Ctrl-C waits for their end
    (`deferred`), also in a command that otherwise reads only (a rerun's record, a compare).
    """
    current = use_tracking_uri(uri or _default_uri())  # driver named, credentials kept out of it, tried once
    key = str(sqlite_file(current) or current)  # a relative SQLite path names another file elsewhere
    with faults.one_line(current):
        if key not in _opened:
            faults.quiet_mlflow_sql_errors()
            check_server(current)
            with interrupts.deferred():  # writes: a Ctrl-C waits for their end
                ensure_schema(current)
                try:
                    close_orphans(mlflow.MlflowClient(current))
                except (MlflowException, OSError) as error:  # a courtesy: the command goes on and says what fails
                    log.debug("orphaned runs not checked: %s", error)
            _opened.add(key)
        if left_running(current):  # the store failed under a run of this process: is it back?
            forget_server(current)
            check_server(current)
            with interrupts.deferred():
                close_left(mlflow.MlflowClient(current), current)
    return current


def _default_uri() -> str:
    """MLflow's default store, its SQLite path as written rather than percent-encoded.

    MLflow writes the default as `sqlite:////…/my%20pr%C3%B8ject/mlflow.db` and, opening it,
    creates the parent folder from that text: an empty `my%20pr%C3%B8ject` beside a project whose
    name holds spaces or non-ASCII letters (MLflow 3.x; SQLAlchemy decodes the path and opens the
    right file). Only `%` and `?`, which SQLAlchemy would decode or cut at, stay encoded.
    """
    # forget any URI set before in this process (set_tracking_uri handles None; its hint says str only)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    default = mlflow.get_tracking_uri()
    path = sqlite_file(default)
    if path is None:
        return default
    return "sqlite:///" + str(path).replace("%", "%25").replace("?", "%3F")


def use_store(tracking_cfg: DictConfig) -> Experiment:
    """Point MLflow at `tracking.uri` and the experiment, checked writable (runs are written
    next); the experiment (an `mlflow.entities.Experiment`). Null means MLflow's default store,
    set explicitly: MLflow keeps the last URI set in a process (a rerun, an earlier run), and a
    null must not inherit it."""
    uri = open_store(tracking_cfg.uri)
    check_store_writable(uri)  # runs are written next: a read-only store is one line, not a half run
    with faults.one_line(uri):  # a lock or a full disk that reads did not meet: one line too
        experiment = mlflow.set_experiment(tracking_cfg.experiment)
    check_artifacts_writable(experiment.artifact_location)
    return experiment


def check_store(tracking_cfg: DictConfig) -> None:
    """Say now, writing nothing, when `tracking.uri` is a tracking server that does not answer."""
    check_server(usable(tracking_cfg.uri) if tracking_cfg.uri else "")  # http://user:password@host: credentials apart


def use_current_store() -> str:
    """The store a fresh `lstmlab` process uses: $MLFLOW_TRACKING_URI, else MLflow's default.

    Set explicitly because MLflow keeps the last `set_tracking_uri` for the whole process. The
    commands that read runs back (compare, rerun, forecast, ui) open it here, so here MLflow's
    progress bar per downloaded artifact, noise on a command's output, is turned off (unless the
    user set MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR).
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return open_store(os.environ.get("MLFLOW_TRACKING_URI"))
