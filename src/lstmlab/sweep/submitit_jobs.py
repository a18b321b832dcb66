"""Submitit jobs stop with their command: Ctrl-C or SIGTERM to `lstmlab train` reaches them.

A submitit job runs in processes of its own (on this machine a controller and its task, on
SLURM a job on some node), which a signal to the command never reaches: after SIGTERM a
multirun's jobs trained all their epochs and ended FINISHED while the command said
"terminated". So whoever waits for submitit jobs (the launchers' `launch`, the sweeper's job
pool) calls `JobStopper.poll` as it waits: once a signal came (lstmlab.interrupts) each job still
running is asked to stop (SIGTERM, through sweep.compat), which a job handles as any lstmlab
process does: its run ends KILLED after the current batch. A local task still starting up may
miss the first ask (submitit's own handler drops SIGTERM until the job sets lstmlab's), so it is
asked again at each poll; after `grace_s` (or the signal a second time, `cancel`) what still
runs is cancelled outright.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lstmlab import interrupts
from lstmlab.sweep.compat import ask_submitit_job_to_stop, cancel_submitit_job

# How often jobs are asked `done()`: a local job's is its controller's exit status; on SLURM it
# looks for the result file (a shared folder) and asks sacct at most every minute or so itself.
POLL_S = {"local": 0.5, "slurm": 2.0}
STOP_GRACE_S = 30.0  # what the parallel launcher's interrupt_grace_s gives its jobs by default


class JobStopper:
    def __init__(self, grace_s: float = STOP_GRACE_S) -> None:
        self.grace_s = grace_s
        self.asked_at: float | None = None

    def poll(self, jobs: Sequence[Any]) -> None:
        """While waiting for submitit `jobs`: after a signal, ask those still running to stop;
        cancel them once `grace_s` has passed since the first ask."""
        if not interrupts.requested():
            return
        again = self.asked_at is not None
        if self.asked_at is None:
            self.asked_at = time.monotonic()
        late = time.monotonic() - self.asked_at > self.grace_s
        for job in jobs:
            if not job.done():
                if late:
                    cancel_submitit_job(job)
                else:
                    ask_submitit_job_to_stop(job, again)

    @staticmethod
    def cancel(jobs: Sequence[Any]) -> None:
        """Stop now every job still running (the signal a second time, an error while waiting)."""
        for job in jobs:
            if not job.done():
                cancel_submitit_job(job)
