"""Ctrl-C and SIGTERM: a stop request that is never lost, and the exit code that says which.

Python turns SIGINT into KeyboardInterrupt wherever the main thread is. Raised inside a weakref
callback or a finalizer (Keras and TensorFlow objects collected between two runs), Python prints
"Exception ignored" and carries on: a sweep then ran to its end. So the signal is also
remembered, and `check()` at safe points (between trials, before a run, after every epoch) raises
it again. SIGTERM (a scheduler, `kill`) is handled like Ctrl-C: runs close as KILLED, sweep
trials are failed and queued again; the process exits 128 + the signal's number.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

_received: int | None = None
_default_unraisablehook = sys.unraisablehook


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that every cleanup for Ctrl-C runs for it too."""


def install() -> None:
    """Handle SIGINT and SIGTERM in this process (from the main thread; elsewhere a no-op)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        return
    _received = None
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, _handle)
    if sys.unraisablehook is not _quiet_about_interrupts:
        global _default_unraisablehook
        _default_unraisablehook = sys.unraisablehook
        sys.unraisablehook = _quiet_about_interrupts


def _quiet_about_interrupts(unraisable: Any) -> None:
    """No "Exception ignored … KeyboardInterrupt" on the console: `check()` raises it again."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        return
    _default_unraisablehook(unraisable)


def _handle(number: int, frame: Any) -> None:
    global _received
    _received = number
    raise _interrupt(number)


def _interrupt(number: int) -> KeyboardInterrupt:
    return Terminated() if number == signal.SIGTERM else KeyboardInterrupt()


def check() -> None:
    """Raise the interrupt again if a signal came and its exception was swallowed on the way."""
    if _received is not None:
        raise _interrupt(_received)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's code: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def epoch_hook(epoch: int, logs: dict) -> bool:
    """An epoch hook for `run_experiment`: raises a swallowed interrupt after each epoch (not
    after each batch: a batch hook makes Keras hand every batch's logs to Python)."""
    check()
    return False
