"""Before a run starts: the store can take it. A read-only `mlflow.db` or `mlruns/` would
otherwise fail after training (a traceback, a run half-written); here it is one line and no run.

Checked with os.access, which also sees an immutable file (chattr +i); it writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from lstmlab.errors import LstmlabError
from lstmlab.sqlite_files import read_only_part, sqlite_file

FIX = "check the permissions, or point tracking.uri (or MLFLOW_TRACKING_URI) at a writable store"


def check_store_writable(uri: str) -> None:
    """A SQLite store whose file, or folder (SQLite writes its journal beside the file), is read-only."""
    path = sqlite_file(uri)
    if path is None:
        return
    read_only = read_only_part(path)
    if read_only is not None:
        what = "the file" if read_only == path else "its folder"
        raise LstmlabError(f"the MLflow store {path} is read-only ({what} cannot be written): {FIX}")


def check_artifacts_writable(location: str | None) -> None:
    """A local artifact folder (an experiment's `mlruns/<id>`) that runs could not write to."""
    folder = local_folder(location)
    if folder is None:
        return
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # MLflow creates the missing part: it must be able to
    if not os.access(existing, os.W_OK):
        raise LstmlabError(f"the MLflow artifact folder {existing} is read-only: runs could not store "
                           f"their files there; {FIX}")


def local_folder(location: str | None) -> Path | None:
    if not location:
        return None
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # s3://, mlflow-artifacts:/ … (one letter: a drive)
        return None
    return Path(location).absolute()
