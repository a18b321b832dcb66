"""Runs left RUNNING by a process that died without a word (kill -9, a crash, a power cut), or
by this process when the store failed under the run (see `leave_running`).

Every run records where it runs: tags `lstmlab.host`, `lstmlab.pid` and `lstmlab.start` (the
process's start time, so that a pid used again by another process is not taken for the run's).
The first time a command opens a store, RUNNING runs of this host whose process is gone are
closed as KILLED, so the run list never shows a dead run as running. Runs of other hosts are
left alone: whether their process lives cannot be seen from here.
Cost: one search of the store for RUNNING runs of this host per command (see the note of the
branch that added it for the measured time).

A run whose store failed (a server gone, a full disk, a lock) cannot be closed by its own process
at the time. If the process then ends, the next command closes it as above; if it goes on (a
multirun's next job, a sweep's next trial, a launcher's worker), its pid still lives, so it keeps
the run in `_left` and closes it itself the next time it opens that store.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

HOST, PID, START = "lstmlab.host", "lstmlab.pid", "lstmlab.start"
CLOSED = "lstmlab.closed"  # why a run was closed by another process than its own, or later

# Runs this process could not close, by store URI: run id -> (the status it ends with, why).
_left: dict[str, dict[str, tuple[str, str]]] = {}


def owner_tags() -> dict[str, str]:
    """Where this process runs: the tags every run (and sweep parent run) carries."""
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), START: process_start(pid) or ""}


def process_start(pid: int) -> str | None:
    """The process's start time (clock ticks after boot, from /proc); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the name before ")" may hold spaces
        return fields[19]  # field 22 of proc(5): starttime
    except (OSError, IndexError):
        return None


def is_gone(pid: int, start: str) -> bool:
    """True when no process has this pid, or the one that has it started at another time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process: alive
        pass
    now = process_start(pid)
    return bool(start) and now is not None and now != start


def close_orphans(client) -> list[str]:
    """Close RUNNING runs of this host whose process is gone as KILLED; their ids."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    host = socket.gethostname().replace("'", "")
    runs = client.search_runs(
        experiments, f"attributes.status = 'RUNNING' AND tags.`{HOST}` = '{host}'", max_results=1000)
    closed = []
    for run in runs:
        tags = run.data.tags
        try:
            pid = int(tags.get(PID, ""))
        except ValueError:
            continue
        if is_gone(pid, tags.get(START, "")):
            close_run(client, run.info.run_id, f"process {pid} on {host} had gone")
            closed.append(run.info.run_id)
    if closed:
        log.warning("closed %d run(s) left RUNNING by processes of this host that had gone, as "
                    "KILLED: %s", len(closed), ", ".join(closed))
    return closed


def close_run(client, run_id: str, why: str, status: str = "KILLED") -> None:
    """End a run its own process cannot end any more (or could not then): `status`, with tag
    `lstmlab.closed` saying why."""
    client.set_tag(run_id, CLOSED, why)
    client.set_terminated(run_id, status)


def leave_running(uri: str, run_id: str, status: str, why: str) -> None:
    """A run of this process that the store at `uri` could not close as `status` (`why`): closed
    by `close_left` when this process opens the store again."""
    _left.setdefault(uri, {})[run_id] = (status, why)


def left_running(uri: str) -> list[str]:
    return list(_left.get(uri, {}))


def close_left(client, uri: str) -> list[str]:
    """Close the runs this process left RUNNING in the store at `uri`; their ids. A store that
    still fails raises (the caller says it); a run gone from the store is forgotten."""
    from mlflow.exceptions import MlflowException

    closed = []
    for run_id, (status, why) in list(_left.get(uri, {}).items()):
        try:
            if client.get_run(run_id).info.status == "RUNNING":
                close_run(client, run_id, f"{why}; closed when the store answered again", status)
                closed.append(run_id)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        del _left[uri][run_id]
    if closed:
        log.warning("closed %d run(s) that the store could not close when they stopped: %s",
                    len(closed), ", ".join(closed))
    return closed
