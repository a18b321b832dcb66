"""SQLite files that several processes share: the MLflow store and the Optuna storage.

SQLite serializes single writes but not "look, then create" sequences made of several (MLflow's
schema setup, the sweeper's "fewer than n_trials started? then ask one"): for those, processes
take turns under an flock on `<file>.lock` beside the database. And a read-only file or folder
(SQLite writes its journal beside the file) is found before anything is written. `sqlite_file`
finds the database file a `sqlite:///` URL names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(database: Path) -> Iterator[None]:
    """Held by one process at a time, until the block ends or the process dies (the kernel drops
    an flock with its file). Raises OSError if the lock file cannot be created. Not POSIX: no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def read_only_part(database: Path) -> Path | None:
    """The file, or its folder, where it exists and cannot be written (os.access also sees an
    immutable file); None when SQLite can write both."""
    for target in (database, database.parent):
        if target.exists() and not os.access(target, os.W_OK):
            return target
    return None


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for any other store (or in-memory)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not uri.startswith("sqlite:"):
        return None
    try:
        database = make_url(uri).database
    except (ArgumentError, ValueError):  # no URL, or a port that is no number: MLflow says so in its own words
        return None
    if database in (None, "", ":memory:"):
        return None
    return Path(database).expanduser().absolute()
