"""A store that fails under a command: the true cause in one line, not a traceback.

A store can stop answering (a tracking server that died or hangs), run out of space, be locked
by another process (a `sqlite3` shell or a backup holding a SQLite file) or turn read-only, at
the start of a command or in the middle of a run. MLflow raises each as an MlflowException whose
text buries the cause under a URL or an SQL statement (and logs the SQL ones with a traceback
first). `find` reads the cause from the error's chain; `one_line` turns such an error into a
LstmlabError that names it, the file or server, and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lstmlab.errors import LstmlabError
from lstmlab.secrets import mask
from lstmlab.sqlite_files import read_only_part, sqlite_file
from lstmlab.tracking.writable import FIX

# How SQLite says it (MLflow passes its text on, in an MlflowException or an SQLAlchemy error).
LOCKED = "database is locked"
FULL = ("database or disk is full", "No space left on device")
READ_ONLY = "attempt to write a readonly database"
DISK_IO = "disk I/O error"  # SQLite's word for a write the system refused: EIO, but also EPERM (chattr +i)


@dataclass(frozen=True)
class Fault:
    """What failed (`what`) and what the user can do about it (`fix`, may be empty)."""

    what: str
    fix: str = ""

    def line(self, after: str = "") -> str:
        """The line a user reads; `after` is said before what to do."""
        return f"{self.what}{after}: {self.fix}" if self.fix else self.what + after


def find(error: BaseException, uri: str) -> Fault | None:
    """The store fault behind `error`, raised while working on the store at `uri`; None for any
    other error (a bug, a user's error)."""
    if isinstance(error, LstmlabError):
        return None  # already said in a line
    errors = list(_chain(error))
    text = " ".join(str(seen) for seen in errors)
    full = [seen for seen in errors if isinstance(seen, OSError) and seen.errno == errno.ENOSPC]
    if full or any(words in text for words in FULL):
        path = next((seen.filename for seen in full if isinstance(seen.filename, str)), None)
        return no_space(Path(path) if path else sqlite_file(uri))
    if LOCKED in text:
        return locked(sqlite_file(uri) or Path(uri))
    if READ_ONLY in text or DISK_IO in text:
        return _unwritable(sqlite_file(uri) or Path(uri))
    if uri.startswith(("http://", "https://")):
        return _server_fault(errors, uri)
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, its causes and contexts, and the driver errors SQLAlchemy wraps (`orig`)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def _server_fault(errors: list[BaseException], uri: str) -> Fault | None:
    import requests

    failed = [e for e in errors if isinstance(e, requests.exceptions.RequestException)]
    if not failed:
        return None
    text = " ".join(str(e) for e in failed)
    if isinstance(failed[0], requests.exceptions.RetryError):  # it answers, with 5xx after 5xx
        status = re.search(r"ResponseError\('([^']+)'", text)
        return Fault(f"the MLflow tracking server {mask(uri)} answered only with errors"
                     f" ({status[1] if status else 'HTTP 5xx'})", "see the server's log")
    if "timed out" in text.lower():
        reason = f"no answer within {os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
    elif "refused" in text.lower():
        reason = "connection refused"
    else:
        reason = type(failed[0]).__name__
    return Fault(f"the MLflow tracking server {mask(uri)} stopped answering ({reason})")


def no_space(path: Path | None) -> Fault:
    """A full disk, named by the file that could not be written (else the working directory,
    where Hydra's folders and MLflow's default store are), with the space left there."""
    if path is None:
        here = Path.cwd()
        what = f"no space left on a device lstmlab writes to (the working directory {here}: {_free(here)})"
    else:
        what = f"no space left on the device of {path} ({_free(path)})"
    return Fault(what, "free some space there, then run again")


def _free(path: Path) -> str:
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return f"{_size(shutil.disk_usage(existing).free)} free"
    except OSError:
        return "free space unknown"


def _unwritable(path: Path) -> Fault:
    """A SQLite store whose writes fail: made read-only (the likely cause, seen by os.access), else
    the disk's own error."""
    read_only = read_only_part(path)
    if read_only is not None:
        what = "the file" if read_only == path else "its folder"
        return Fault(f"the MLflow store {path} became read-only ({what} cannot be written)", FIX)
    return Fault(f"the MLflow store {path} cannot be written (SQLite: disk I/O error; {_free(path)})",
                 "check the disk (dmesg) and its free space, then run again")


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}"
        count /= 1000
    return f"{count:.0f} TB"


def locked(path: Path) -> Fault:
    holders = ", ".join(f"pid {pid}: {command}" if command else f"pid {pid}" for pid, command in lock_holders(path))
    by = f"another process ({holders})" if holders else "another process"
    return Fault(f"the MLflow store {path} is locked by {by}, which did not release it while MLflow waited",
                 "end that process's transaction (or the process), then run again")


def lock_holders(path: Path) -> list[tuple[int, str]]:
    """Processes holding a lock on `path` (pid, command line), read from /proc/locks (Linux);
    empty where it cannot be seen. SQLite locks with fcntl, which /proc/locks lists by inode."""
    try:
        stat = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return []
    file_id = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    holders: dict[int, str] = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->" or fields[5] != file_id or not fields[4].isdigit():
            continue  # "->": a process waiting for the lock, not holding it
        pid = int(fields[4])
        if pid != os.getpid():
            holders[pid] = _command(pid)
    return sorted(holders.items())


def _command(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    command = " ".join(word.decode(errors="replace") for word in words if word)
    return command if len(command) <= 80 else command[:77] + "..."


@contextlib.contextmanager
def one_line(uri: str, after: str = "") -> Iterator[None]:
    """Within: a store fault becomes a LstmlabError saying it (with `after` appended)."""
    try:
        yield
    except Exception as error:
        fault = find(error, uri)
        if fault is None:
            raise
        raise LstmlabError(fault.line(after)) from error


class MlflowSqlErrors(logging.Filter):
    """MLflow logs a database error with its traceback (at ERROR, which the console shows) before
    raising it; a store fault is said in one line instead, so its record goes to WARNING: into
    the run's log file, off the console. With no space left it is dropped: the log file is most
    likely on the full disk too, and its handler would print the record with a traceback of its
    own ("--- Logging error ---")."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None or record.levelno < logging.ERROR:
            return True
        texts = " ".join(str(seen) for seen in _chain(error))
        if any(words in texts for words in FULL):
            return False
        if any(words in texts for words in (LOCKED, READ_ONLY, DISK_IO)):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_mlflow_sql_errors() -> None:
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, MlflowSqlErrors) for f in logger.filters):
        logger.addFilter(MlflowSqlErrors())
