"""Ending a run whose store may have failed: one quick try, else left to the next command.

`mlflow.start_run`'s context ends a run by asking the store once more, with MLflow's full
retries: after a tracking server died that was minutes more, and after a full disk or a lock it
failed again with a second traceback and left the run RUNNING. Here the end is tried once (at
once, when the store just failed); when the store cannot take it, the run is kept for the next
command (`orphans.leave_running`) and the error says so in one line: what failed, the run, and
that it will be closed.
"""

from __future__ import annotations

import contextlib

import mlflow

from lstmlab.tracking import faults
from lstmlab.tracking.orphans import leave_running
from lstmlab.tracking.reach import forget_server, quick_requests


def end_run(run_id: str, status: str, after: BaseException | None = None) -> faults.Fault | None:
    """End this process's active run `run_id` as `status`; `after`: the error that stops it.

    Returns the store fault that stopped the run (that of `after`, or of the end itself), None
    when there was none; with a fault the run is closed now if the store takes it, else later.
    An error of the end that is no store fault is raised (a bug).
    """
    uri = mlflow.get_tracking_uri()
    fault = faults.find(after, uri) if isinstance(after, Exception) else None
    try:
        with quick_requests() if fault else contextlib.nullcontext():
            mlflow.end_run(status)  # off MLflow's stack of active runs first, then to the store
        closed = True
    except Exception as error:
        fault = fault or faults.find(error, uri)
        if fault is None:
            raise
        leave_running(uri, run_id, status, fault.what)
        closed = False
    if fault is not None:
        forget_server(uri)  # the next job in this process asks the server again before it starts
        fix = f"; {fault.fix}" if fault.fix else ""
        fault = faults.Fault(_stopped(run_id, fault.what, closed, status) + fix)
    return fault


def _stopped(run_id: str, what: str, closed: bool, status: str) -> str:
    if status == "FINISHED":  # its results are recorded; only its end was not
        head = f"run {run_id} finished, but could not be marked FINISHED: {what}"
    else:
        head = f"run {run_id} stopped: {what}"
    if closed:
        return f"{head}; it is closed as {status}"
    return f"{head}; it is left RUNNING for now: the next lstmlab command that reaches the store closes it"
