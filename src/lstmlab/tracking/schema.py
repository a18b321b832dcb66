"""First use of a SQLite MLflow store: its schema is created by one process at a time.

MLflow creates (and migrates) the tables of a new `sqlite:///…` store when a process first
touches it, with no lock: several `lstmlab train` started together on a fresh store run
Alembic's migrations at once and leave it half-migrated for good ("table
_alembic_tmp_latest_metrics already exists"). Here that first touch is made under a file lock
beside the SQLite file (`lstmlab.sqlite_files.exclusive`, as the sweeper's study lock), so the others wait
and find the tables made. A store left half-created by an interrupted setup (a crash, an older
lstmlab) is created again when it holds no run; one that holds runs is never touched: the error
says what to do.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from lstmlab.errors import LstmlabError, first_line
from lstmlab.sqlite_files import exclusive, sqlite_file
from lstmlab.tracking import faults

log = logging.getLogger(__name__)


def ensure_schema(uri: str) -> None:
    """Create (or check) the store's schema (open_store calls it once per store and process);
    serialized across processes."""
    from mlflow import MlflowClient

    path = sqlite_file(uri)
    if path is None:
        MlflowClient(uri)  # other stores: MLflow's own setup (a server, a database it locks)
        return
    with _file_lock(path):
        try:
            MlflowClient(uri)  # creates the tables of a new store, checks those of an old one
        except Exception as error:  # noqa: BLE001 - sorted below: unusable, half-made, or a bug
            _recover(path, uri, error)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """`sqlite_files.exclusive` on the store, or no lock where its folder cannot take the lock
    file but the store exists (reading may still work); otherwise one line."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive(path))
        except OSError as error:
            if not path.is_file():
                raise LstmlabError(f"cannot create the MLflow store {path}: {error.strerror or error}; "
                                   "choose a writable place with tracking.uri or MLFLOW_TRACKING_URI") from None
        yield


def _recover(path: Path, uri: str, error: BaseException) -> None:
    """Re-create a half-made store that holds no run; otherwise one line saying what to do."""
    from mlflow import MlflowClient

    reason = first_line(error)
    if _unwritable(reason):
        raise LstmlabError(f"cannot write the MLflow store {path}: {reason}; check the permissions of "
                           "the file and its folder, or choose another tracking.uri") from None
    fault = faults.find(error, uri)  # locked by another process, a full disk: the store itself is fine
    if fault is not None:
        raise LstmlabError(fault.line()) from None
    tables = _tables(path)
    if tables is None:
        raise LstmlabError(f"{path} is not an MLflow store MLflow can open ({reason}); "
                           "choose another tracking.uri or move the file aside") from None
    if not _holds_runs(path, tables):
        log.warning("the MLflow store %s was left half-created by an interrupted setup (%s) and "
                    "holds no run: creating it again", path, reason)
        _drop_tables(path, tables)  # emptied, not deleted: MLflow keeps its engine on this file
        MlflowClient(uri)
        return
    leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    fix = (f"drop the leftover tables of an interrupted migration ({', '.join(leftovers)}), then "
           if leftovers else "")
    raise LstmlabError(f"the MLflow store {path} holds runs but its schema is not usable ({reason}): "
                       f"back it up, {fix}run `mlflow db upgrade {uri}`") from None


def _unwritable(reason: str) -> bool:
    words = ("readonly database", "read-only", "permission denied", "unable to open database")
    return any(word in reason.lower() for word in words)


def _tables(path: Path) -> set[str] | None:
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError:
        return None


def _holds_runs(path: Path, tables: set[str]) -> bool:
    """Runs, or experiments beyond MLflow's own "Default": what re-creating would lose."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        if "runs" in tables and db.execute("SELECT 1 FROM runs LIMIT 1").fetchone():
            return True
        return "experiments" in tables and bool(
            db.execute("SELECT 1 FROM experiments WHERE name != 'Default' LIMIT 1").fetchone())


def _drop_tables(path: Path, tables: set[str]) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        for table in tables:
            if not table.startswith("sqlite_"):
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
        db.commit()
