"""Study storage: the URL, the lock that lets workers take turns, and opening the study.

Every worker of a study (processes on one machine or many) opens the same storage URL. The
storage numbers trials atomically, but "are fewer than n_trials started? then start one" is two
steps, so workers take turns at it under a study lock: a PostgreSQL advisory lock or MySQL
named lock (held by a connection, so a dead worker's lock goes with its connection), or a file
lock beside a SQLite file. Heartbeats (Optuna's RDB heartbeat) let any worker fail the trials of
a worker that died, and queue them again. A RUNNING trial that never recorded a heartbeat (its
worker stopped between asking for it and the first beat, or it was asked outside a sweep) is
judged by its start time instead: silent for the same grace period, it is stale too.

Once the storage has answered, a transient database error (a restart, a dropped connection) is
tried again for `hydra.sweeper.storage_retry_s` seconds, by the storage (lstmlab.sweep.outages)
and by the lock; an address that never answered is one line at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import optuna
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from lstmlab.errors import LstmlabError, first_line
from lstmlab.secrets import mask
from lstmlab.sqlite_files import exclusive, read_only_part
from lstmlab.sweep.outages import OPENING_ERRORS, RetryingStorage, retry_transient

OBJECTIVE = "val_rmse"  # the study's one metric, minimized
# A trial whose worker has not recorded a heartbeat for this many intervals is failed.
GRACE_INTERVALS = 3


def resolve_url(url: str) -> str:
    """The storage URL with a relative SQLite path made absolute (jobs may run elsewhere).

    `postgresql://` means psycopg (3) to SQLAlchemy 2.1; lstmlab installs psycopg2, so the URL
    names it when psycopg is absent.
    """
    parsed = _parse(url)
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=False)


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise LstmlabError(
            f"hydra.sweeper.storage={url!r} is not a database URL; use e.g. "
            "sqlite:///mlruns/optuna.db or postgresql://user@host:5432/optuna"
        ) from None


class StudyLock:
    """Serializes counting-and-asking for one study across all its workers.

    A database lock lives on its connection: a restart ends it with the connection, and the next
    `with` takes it again (tried for `retry_s` seconds once the lock has been taken once).
    """

    def __init__(self, url: str, study_name: str, retry_s: float):
        parsed = _parse(url)
        self._backend = parsed.get_backend_name()
        digest = hashlib.sha256(f"lstmlab-optuna-study:{study_name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._name = "lstmlab:" + digest.hex()[:40]
        self._url = url
        self._retry_s = retry_s
        self._taken_once = False
        self._connection: Any = None
        self._engine: Any = None
        self._file_lock = contextlib.ExitStack()
        if self._backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._database: Path | None = Path(parsed.database)
        else:
            self._database = None

    def __enter__(self) -> StudyLock:
        if self._database is not None:
            try:
                self._file_lock.enter_context(exclusive(self._database))
            except OSError as error:
                raise LstmlabError(unwritable(self._url, error)) from None
        elif self._backend in ("postgresql", "mysql", "mariadb"):
            if self._taken_once:
                retry_transient(self._take, self._retry_s, mask(self._url))
            else:
                try:
                    self._take()
                except OPENING_ERRORS as error:
                    raise LstmlabError(unreachable(self._url, error)) from None
            self._taken_once = True
        return self

    def _take(self) -> None:
        self._release()  # a connection a failed try left open
        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self._url, poolclass=sqlalchemy.pool.NullPool)
        self._connection = self._engine.connect()
        self._connection.execution_options(isolation_level="AUTOCOMMIT")
        if self._backend == "postgresql":
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        else:
            self._connection.execute(sqlalchemy.text("SELECT GET_LOCK(:n, -1)"), {"n": self._name})

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._connection is not None:
                unlock = ("SELECT pg_advisory_unlock(:k)" if self._backend == "postgresql"
                          else "SELECT RELEASE_LOCK(:n)")
                self._connection.execute(sqlalchemy.text(unlock), {"k": self._key, "n": self._name})
        except sqlalchemy.exc.SQLAlchemyError:
            pass  # its connection is gone, and the lock with it
        finally:
            self._release()
            self._file_lock.close()

    def _release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except sqlalchemy.exc.SQLAlchemyError:
                pass  # already broken
            self._connection = None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def unreachable(url: str, error: BaseException) -> str:
    return (f"cannot open the Optuna storage {mask(url)}: {mask(first_line(error))}; check hydra.sweeper.storage "
            "(is the database server running, and does the database exist?)")


def unwritable(url: str, error: OSError) -> str:
    return (f"cannot write the Optuna storage {mask(url)}: {error.strerror or error}; choose a "
            "writable place with hydra.sweeper.storage (e.g. sqlite:///mlruns/optuna.db)")


def _check_writable(url: str, path: Path) -> None:
    """The SQLite file and its folder (its journal goes beside it) can be written, or one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LstmlabError(unwritable(url, error)) from None
    if read_only_part(path) is not None:
        raise LstmlabError(unwritable(url, PermissionError(13, "read-only")))


def open_storage(url: str, heartbeat_interval: int, retry_s: float) -> RetryingStorage:
    """The RDB storage with heartbeats on; stale trials are queued again with the same params."""
    backend = _parse(url).get_backend_name()
    if backend == "sqlite":
        database = _parse(url).database
        if database not in (None, "", ":memory:"):
            _check_writable(url, Path(database))
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}  # several writers
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return RetryingStorage(  # a trial that never beat can be stale too (lstmlab.sweep.heartbeat_storage)
                url,
                retry_s=retry_s,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=GRACE_INTERVALS * heartbeat_interval,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
            )
        except OPENING_ERRORS as error:
            raise LstmlabError(unreachable(url, error)) from None


def open_study(storage: optuna.storages.RDBStorage, name: str, sampler: Any) -> optuna.Study:
    """Create the study, or load it when it exists (a resumed sweep or another worker)."""
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                sampler=sampler, load_if_exists=True)
    if study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise LstmlabError(f"study {name!r} in {mask(storage.url)} maximizes; lstmlab sweeps "
                           "minimize val_rmse: choose another hydra.sweeper.study_name")
    if study.metric_names != [OBJECTIVE]:  # what Optuna's dashboard and CLI call the value
        study.set_metric_names([OBJECTIVE])
    return study
