"""Riding out a database restart: Optuna storage calls tried again on a transient error, for a
bounded time, in the sweeper and in every job.

A PostgreSQL restart, a dropped connection or a failover breaks the open connections, and Optuna
raises `StorageInternalError` at the first call that meets one. A sweep that runs for hours should
not die of a restart that takes seconds: each call is tried again (1 s apart, growing to 5 s) for
up to `retry_s` seconds (`hydra.sweeper.storage_retry_s`, 60 by default), then `StorageUnavailable`
stops the sweep with one line. Only errors that say the connection failed are retried
(SQLAlchemy's OperationalError and InterfaceError, disconnects); a bad value or a broken
constraint is raised at once. Optuna has no retry of its own at this level (its
RetryFailedTrialCallback reruns whole trials), so it is written here.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.secrets import mask
from lstmlab.sweep.heartbeat_storage import CACHED_STORAGE_PRIVATE_CALLS, HeartbeatStorage, quiet_read_fallback

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_PAUSE_S, LONGEST_PAUSE_S = 1.0, 5.0


class StorageUnavailable(LstmlabError):
    """The storage did not answer for the whole retry time."""


# What a storage call raises when the database, its driver or the connection fails: SQLAlchemy's
# errors (a DBAPI's are wrapped in them), a socket or file, Optuna's wrapper of them, and
# StorageUnavailable once the retries are spent. Who rides out or reports a storage failure (a
# heartbeat, an owner's beat, a cleanup) catches these; a bug still raises.
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.SQLAlchemyError, OSError, optuna.exceptions.StorageInternalError, LstmlabError)
# Opening a storage adds Optuna's two of its own: the URL's driver not installed (ImportError), a
# schema another Optuna version made (RuntimeError, with the command that upgrades it).
OPENING_ERRORS: tuple[type[Exception], ...] = (*STORAGE_ERRORS, ImportError, RuntimeError)


def transient_cause(error: BaseException) -> BaseException | None:
    """The database error behind `error` (Optuna's StorageInternalError wraps SQLAlchemy's) when it
    says the connection failed, else None."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                              sqlalchemy.exc.PendingRollbackError)):  # the last: after a dropped connection
            return cause
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _said(cause: BaseException) -> str:
    """The driver's own words (`server closed the connection unexpectedly`), password masked."""
    return mask(first_line(getattr(cause, "orig", None) or cause))


def retry_transient(call: Callable[[], T], retry_s: float, where: str) -> T:
    """`call()`, tried again on a transient error until `retry_s` seconds have passed; `where`
    names the storage (password masked) in what is said. A stop asked for (Ctrl-C) while waiting
    is raised at once."""
    deadline = time.monotonic() + retry_s
    pause, failed_at = FIRST_PAUSE_S, None
    while True:
        try:
            result = call()
        except Exception as error:
            cause = transient_cause(error)
            if cause is None:
                raise
            if failed_at is None:
                failed_at = time.monotonic()
                log.info(f"the Optuna storage {where} does not answer ({_said(cause)}); trying again "
                         f"for up to {retry_s:.0f} s")
            if time.monotonic() + pause > deadline:
                raise StorageUnavailable(f"the Optuna storage {where} did not answer for {retry_s:.0f} s "
                                         f"({_said(cause)})") from None
            interrupts.check()
            time.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_S)
            continue
        if failed_at is not None:
            log.info(f"the Optuna storage {where} answers again (after {time.monotonic() - failed_at:.0f} s)")
        return result


_calls = threading.local()  # depth of retried calls in this thread: nested ones are not retried again


class RetryingStorage(HeartbeatStorage):
    """Optuna's RDB storage (with lstmlab's heartbeat rule), each database call retried on a
    transient error for `retry_s` seconds. Made once the storage has answered: its constructor
    is not retried, so an address that never worked is reported at once."""

    def __init__(self, url: str, retry_s: float, **kwargs: Any) -> None:
        self.retry_s = retry_s
        quiet_read_fallback()  # this module says an outage, not Optuna's misleading warning
        super().__init__(url, **kwargs)

    @contextmanager
    def without_retry(self) -> Iterator[None]:
        """Calls in this thread fail at once: for heartbeats (a missed beat is retried next
        interval) and for cleaning up after the storage was given up on."""
        _calls.depth = getattr(_calls, "depth", 0) + 1
        try:
            yield
        finally:
            _calls.depth -= 1


def _retried(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def call(self: RetryingStorage, *args: Any, **kwargs: Any) -> T:
        if getattr(_calls, "depth", 0):
            return method(self, *args, **kwargs)
        tries = 0

        def once() -> T:
            nonlocal tries
            tries += 1
            _calls.depth = getattr(_calls, "depth", 0) + 1
            try:
                return method(self, *args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if tries > 1 and method.__name__ == "set_trial_state_values":
                    return cast(T, True)  # the try that broke off had written it before its connection went
                raise
            finally:
                _calls.depth -= 1

        return retry_transient(once, self.retry_s, mask(str(self.url)))

    return call


# Every storage method that reads or writes the database: the public ones of Optuna's BaseStorage,
# the heartbeat's, and the private ones Optuna's own wrapper of a study's storage calls (see
# lstmlab.sweep.heartbeat_storage). A retried `_create_new_trial` whose first try was written before its
# connection broke leaves one trial RUNNING with no heartbeat: failed as stale, then rerun.
NOT_DATABASE = {"check_trial_is_updatable", "remove_session"}
DATABASE_METHODS = sorted(
    {name for name in dir(BaseStorage) if not name.startswith("_") and callable(getattr(BaseStorage, name))}
    - NOT_DATABASE | {"record_heartbeat", *CACHED_STORAGE_PRIVATE_CALLS}
)
for _name in DATABASE_METHODS:
    setattr(RetryingStorage, _name, _retried(getattr(HeartbeatStorage, _name)))
