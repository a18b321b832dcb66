"""How the sweeper starts trials: one by one as workers free up, where the launcher can, else in
Hydra's batches.

Hydra's `Launcher.launch` runs a batch and returns when its slowest job has ended: workers that
finished early wait. A job pool instead takes jobs one at a time (`submit(overrides, idx)` → a
job with `done()` and `result()` → JobReturn) and `wait(jobs, timeout)` returns those that have
ended as soon as one has. Two launchers offer one, each on its own engine:
- `hydra/launcher=parallel`: its `job_pool()`, futures of the loky process pool it runs on;
- `submitit_local` / `submitit_slurm`: submitit's own jobs, from the executor the launcher would
  build (lstmlab.sweep.compat), polled with `done()`; after Ctrl-C or SIGTERM they are asked to
  stop at each poll, and cancelled after a grace (lstmlab.sweep.submitit_jobs).
Any other launcher (basic, joblib, ray) runs batches; `batches_because` says why in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from hydra.core.utils import JobReturn, filter_overrides

from lstmlab import interrupts
from lstmlab.sweep.compat import (
    failed_job,
    is_submitit_launcher,
    make_sweep_dir,
    submitit_cluster,
    submitit_executor,
    submitit_job_args,
)
from lstmlab.sweep.submitit_jobs import POLL_S, JobStopper

log = logging.getLogger(__name__)


class Job(Protocol):
    def done(self) -> bool: ...

    def result(self) -> JobReturn: ...


class JobPool(Protocol):
    def submit(self, overrides: Sequence[str], idx: int) -> Job: ...

    def wait(self, jobs: Sequence[Job], timeout: float) -> list[Job]: ...


def job_pool(launcher: Any) -> AbstractContextManager[JobPool] | None:
    """The launcher's job pool, or None when it only runs batches."""
    if callable(getattr(launcher, "job_pool", None)):
        pool: AbstractContextManager[JobPool] = launcher.job_pool()
        return pool
    if is_submitit_launcher(launcher):
        return submitit_pool(launcher)
    return None


def batches_because(launcher: Any, async_trials: bool) -> str:
    """Why trials run in batches, in words for the sweep's line."""
    if not async_trials:
        return "hydra.sweeper.async_trials=false"
    return (f"the launcher {type(launcher).__name__} runs whole batches only (hydra/launcher=parallel or "
            "submitit_local/submitit_slurm start each trial as soon as a worker is free)")


@contextmanager
def submitit_pool(launcher: Any) -> Iterator[JobPool]:
    executor = submitit_executor(launcher)
    sweep_dir = make_sweep_dir(launcher)
    log.info(f"{type(launcher).__name__}: a submitit job per trial as workers free up, sweep output dir : {sweep_dir}")
    pool = SubmititPool(executor, launcher, POLL_S.get(submitit_cluster(launcher), 2.0))
    try:
        yield pool
    except BaseException:  # the signal a second time, or the sweep failed: no job runs on without it
        JobStopper.cancel(pool.submitted)
        raise


class SubmititPool:
    """Jobs through submitit's executor, one `submit` each (the launcher itself is the job's
    function, as in its own `launch`)."""

    def __init__(self, executor: Any, launcher: Any, poll_s: float) -> None:
        self.executor = executor
        self.launcher = launcher
        self.poll_s = poll_s
        self.submitted: list[Any] = []  # submitit.Job
        self.stopper = JobStopper()

    def submit(self, overrides: Sequence[str], idx: int) -> SubmititJob:
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        job = self.executor.submit(self.launcher, *submitit_job_args(list(overrides), idx))
        self.submitted.append(job)
        return SubmititJob(job, list(overrides))

    def wait(self, jobs: Sequence[Job], timeout: float) -> list[Job]:
        deadline = time.monotonic() + timeout
        while True:
            self.stopper.poll(self.submitted)
            done = [j for j in jobs if j.done()]
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(self.poll_s)


class SubmititJob:
    def __init__(self, job: Any, overrides: list[str]) -> None:
        self.job = job  # submitit.Job
        self.overrides = overrides

    def done(self) -> bool:
        return bool(self.job.done())

    def result(self) -> JobReturn:
        if interrupts.requested() and not self.job.paths.result_pickle.exists():
            # stopped before it could say so (cancelled): submitit would wait 15 s for its result file
            return failed_job(self.overrides, interrupts.pending() or KeyboardInterrupt())
        try:
            result: JobReturn = self.job.result()
            return result
        except Exception as error:  # noqa: BLE001 - submitit's FailedJobError and kin: this job failed
            return failed_job(self.overrides, error)
