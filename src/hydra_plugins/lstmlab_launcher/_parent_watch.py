"""A worker process dies with the process that launched it.

After kill -9 of a multirun its loky workers (each with a Keras backend, ~1 GB) lived on, ignored
SIGTERM (lstmlab's worker handler only records it) and started the jobs still queued for them:
loky does not stop a worker whose parent is gone. So each worker watches its parent's pid from a
daemon thread. Once the worker is orphaned (its parent pid changes), the running job is asked to
stop as SIGTERM asks it (it ends its MLflow run as KILLED after the current batch, see
lstmlab.interrupts), and the worker exits once that job has returned, or after `grace_s`. A job
that reaches a worker after its parent died does not start (`orphaned`). PR_SET_PDEATHSIG would do
the first part on Linux only, and fires when the *thread* that started the worker ends, which in
loky may be its manager thread rather than the process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

POLL_S = 0.5
_watching = False
_job_running = threading.Event()


def orphaned(parent_pid: int) -> bool:
    """Whether the process that launched this worker is gone."""
    return os.getppid() != parent_pid


def watch(parent_pid: int, grace_s: float) -> None:
    """Start watching `parent_pid` (once per worker process)."""
    global _watching
    if _watching:
        return
    _watching = True
    threading.Thread(target=_watch, args=(parent_pid, grace_s), daemon=True, name="lstmlab-parent-watch").start()


@contextmanager
def job() -> Iterator[None]:
    """Around a job: the watch lets it end its run before the worker exits."""
    _job_running.set()
    try:
        yield
    finally:
        _job_running.clear()


def _watch(parent_pid: int, grace_s: float) -> None:
    while not orphaned(parent_pid):
        time.sleep(POLL_S)
    if _job_running.is_set():
        os.kill(os.getpid(), signal.SIGTERM)  # recorded by the worker's handler: the job stops
        deadline = time.monotonic() + grace_s
        while _job_running.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
    os._exit(1)  # no interpreter shutdown: loky's threads would wait for the dead parent
