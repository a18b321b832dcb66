"""Opening the MLflow store for a command: the URI set for the process, the store made ready.

Every command reaches MLflow through `open_store` (`runtime.use_store` for runs and sweeps,
`records.store.use_current_store` for compare, rerun, forecast and ui), so what a store needs
before its first use is done in one place, once per process: a server that does not answer is
said in seconds (`reach.py`), a SQLite store's schema is set up by one process at a time
(`schema.py`), and runs that dead processes of this host left RUNNING are closed (`orphans.py`).
"""

from __future__ import annotations

import logging

import mlflow

from lstmlab.store_urls import use_tracking_uri
from lstmlab.tracking.orphans import close_orphans
from lstmlab.tracking.reach import check_server
from lstmlab.tracking.schema import ensure_schema, sqlite_file

log = logging.getLogger(__name__)

_opened: set[str] = set()  # stores this process has made ready


def open_store(uri: str | None) -> str:
    """Point MLflow at `uri` (None: MLflow's default store) and make it ready; the URI in use.

    Set explicitly because MLflow keeps the last URI set in a process, and None must not
    inherit it.
    """
    current = use_tracking_uri(uri)  # driver named, credentials kept out of it, tried once
    key = str(sqlite_file(current) or current)  # a relative SQLite path names another file elsewhere
    if key in _opened:
        return current
    check_server(current)
    ensure_schema(current)
    try:
        close_orphans(mlflow.MlflowClient(current))
    except Exception as error:  # noqa: BLE001 - a courtesy: the command goes on and says what fails
        log.debug("orphaned runs not checked: %s", error)
    _opened.add(key)
    return current
