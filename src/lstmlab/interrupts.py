"""Ctrl-C and SIGTERM: the one way lstmlab stops, and the exit code that says which.

The first signal is only recorded (one line on stderr says so); `check()` raises it at the next
safe point: after every training batch (train.StopOnRequest), before a run and between a run's
folds, between sweep trials, after a command. So a stop never cuts an MLflow or Optuna write
short, and is never lost in a weakref callback or finalizer (where Python would swallow a
KeyboardInterrupt raised by the handler). The second signal raises at once, wherever the process
is. SIGTERM (a scheduler, `kill`) is handled like Ctrl-C: runs close as KILLED, sweep trials are
failed and queued again; the process exits 128 + the signal's number.

Work that writes nothing (reading a record or data, importing, computing a comparison) has no
safe point to wait for, and may be long: inside `at_once()` the first signal raises at once too.
Writes nested in such work (opening a store sets its schema up) are kept whole by `deferred()`.

The parallel launcher's worker processes and submitit's jobs record every signal and never raise
on the second: their launching process stops them (see hydra_plugins.lstmlab_launcher).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_received: int | None = None
_received_at = 0.0
_in_worker = False
_at_once = 0  # how many `at_once` sections the main thread is in (0 in a `deferred` one)
_listeners: list[Callable[[int], None]] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that every cleanup for Ctrl-C runs for it too."""


def install() -> None:
    """Handle SIGINT and SIGTERM in this process (from the main thread; elsewhere a no-op)."""
    _install(in_worker=False, since=None)


def install_in_worker(since: float) -> None:
    """The same in a parallel launcher's worker: a second signal does not raise (the parent kills
    the worker then), nothing is printed (the parent says it), and a signal received before
    `since` (the start of this launch; a reused worker) is forgotten."""
    _install(in_worker=True, since=since)


def _install(in_worker: bool, since: float | None) -> None:
    global _received, _in_worker
    if threading.current_thread() is not threading.main_thread():
        return
    if since is None or _received_at < since:
        _received = None
    _in_worker = in_worker
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handle)


def _handle(number: int, frame: FrameType | None) -> None:
    global _received, _received_at
    if _received is not None and not _in_worker:
        raise _interrupt(number)
    first = _received is None
    _received, _received_at = number, time.time()
    if _at_once:  # nothing to keep whole here: stop now (the command says "interrupted")
        raise _interrupt(number)
    if first and not _in_worker:
        again = "press Ctrl-C again" if number == signal.SIGINT else "send it again"
        print(f"lstmlab: stopping after this batch or step; {again} to stop now", file=sys.stderr,
              flush=True)
        for listener in list(_listeners):
            listener(number)


def _interrupt(number: int) -> KeyboardInterrupt:
    return Terminated() if number == signal.SIGTERM else KeyboardInterrupt()


def as_result(stop: KeyboardInterrupt) -> KeyboardInterrupt:
    """A new interrupt of `stop`'s kind, for a job's result that goes to another process. Not
    `stop` itself: Hydra 1.4's run_job attaches its JobReturn to the exception it raises, that
    JobReturn holds the exception again, and pickling the result then recursed for minutes."""
    return type(stop)()  # KeyboardInterrupt or Terminated: neither takes arguments


def requested() -> bool:
    """Whether a stop was asked for (a signal came since `install`)."""
    return _received is not None


def check() -> None:
    """At a safe point: raise the interrupt if a signal came."""
    stop = pending()
    if stop is not None:
        raise stop


def pending() -> KeyboardInterrupt | None:
    """The interrupt a signal that came asks for (None when none came)."""
    return None if _received is None else _interrupt(_received)


def repeat(number: int) -> None:
    """The signal `number` again, as if it came a second time: stops at once."""
    import _thread

    _thread.interrupt_main(signal.Signals(number))


@contextmanager
def at_once() -> Iterator[None]:
    """Within: the first signal stops at once too. For work that writes nothing, whose only safe
    point would be its end (a record or data read, an import, a comparison computed): a stop
    there waits for nothing. A signal that came before raises on entering."""
    global _at_once
    check()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    _at_once += 1
    try:
        yield
    finally:
        _at_once -= 1


@contextmanager
def deferred() -> Iterator[None]:
    """Within an `at_once` section: a write that must not be cut short (a store's schema set up,
    a run closed), where a signal waits for the end again; it raises then."""
    global _at_once
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer, _at_once = _at_once, 0
    try:
        yield
    finally:
        _at_once = outer
    if outer:
        check()


@contextmanager
def listening(callback: Callable[[int], None]) -> Iterator[None]:
    """Within: `callback(signal number)` is called on the first signal (after it is recorded)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's code: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)
