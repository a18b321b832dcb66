"""How the sweeper starts trials: every launcher as one small job pool, so that one loop
(_loop.py: claim → submit → wait → tell) serves them all.

A job pool takes jobs one at a time (`submit(overrides, idx)` → a job with `done()` and
`result()` → JobReturn) and `wait(jobs, timeout)` returns those that have ended. Three engines:
- `hydra/launcher=parallel`: its `job_pool()`, futures of the loky process pool it runs on;
- `submitit_local` / `submitit_slurm`: submitit's own jobs, from the executor the launcher would
  build (lstmlab.sweep.submitit_jobs), polled with `done()`; after Ctrl-C or SIGTERM they are asked to
  stop at each poll, and cancelled after a grace (lstmlab.sweep.submitit_jobs);
- any other launcher (basic, joblib, ray), or `hydra.sweeper.async_trials=false`: `BatchPool`,
  Hydra's `Launcher.launch` behind the same two calls. `submit` only queues; `wait` launches the
  queue as one batch and returns when its slowest job has ended (workers that finished early
  wait: `batches_because` says why in one line).
The first two return from `wait` as soon as one job has ended, so the next trial starts at once.

`keep_busy` is the one loop over a pool: take jobs while fewer than `concurrency` run, wait,
hand each ended job on. The study's loop takes trials from the study (_loop.py); `run_jobs` takes
a fixed list (a later stage that trains chosen configurations through the same pool).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol, TypeVar

from hydra.core.utils import JobReturn, JobStatus, filter_overrides

from lstmlab import interrupts
from lstmlab.sweep.submitit_jobs import (
    POLL_S,
    JobStopper,
    is_submitit_launcher,
    make_sweep_dir,
    submitit_cluster,
    submitit_executor,
    submitit_job_args,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
WAIT_POLL_SECONDS = 5  # how long a pool's `wait` may take before the loop looks again


def job_error(result: JobReturn) -> BaseException | None:
    """A failed job's exception, without re-raising it (Hydra's `JobReturn.return_value` would:
    `_return_value` is private; tests/sweep/test_compat.py fails when an upgrade moves it)."""
    return result._return_value if result.status == JobStatus.FAILED else None


def failed_job(overrides: list[str], error: BaseException) -> JobReturn:
    """A JobReturn for a job that failed before it was launched (or whose result never came)."""
    return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)


class Job(Protocol):
    def done(self) -> bool: ...

    def result(self) -> JobReturn: ...


class JobPool(Protocol):
    def submit(self, overrides: Sequence[str], idx: int) -> Job: ...

    def wait(self, jobs: Sequence[Job], timeout: float) -> list[Job]: ...


def keep_busy(pool: JobPool, concurrency: int, first_idx: int,
              take: Callable[[int, int], list[tuple[list[str], T]]],
              ended: Callable[[T, JobReturn], None]) -> int:
    """Run jobs through `pool`, `concurrency` at a time, each started as soon as a slot is free.

    `take(free, running)` gives up to `free` jobs (overrides and what the caller tracks them by);
    [] with none running ends the loop. `ended(tag, result)` gets each job's end as it comes.
    After Ctrl-C/SIGTERM nothing more is taken; the running jobs end (the launchers stop them),
    then the interrupt is raised. Returns the index the next job would have.
    """
    running: list[tuple[Job, T]] = []
    idx = first_idx
    while True:
        if len(running) < concurrency and not interrupts.requested():
            for overrides, tag in take(concurrency - len(running), len(running)):
                running.append((pool.submit(overrides, idx), tag))
                idx += 1
        if not running:
            interrupts.check()
            return idx
        finished = pool.wait([job for job, _ in running], WAIT_POLL_SECONDS)
        for job, tag in [(j, t) for j, t in running if any(j is f for f in finished)]:
            running.remove((job, tag))
            ended(tag, job.result())


def run_jobs(pool: JobPool, job_overrides: Sequence[Sequence[str]], concurrency: int,
             first_idx: int = 0, ended: Callable[[int, JobReturn], None] | None = None) -> list[JobReturn]:
    """Each of `job_overrides` run once through `pool` (`keep_busy`); their results in the order
    given. `ended(i, result)` hears of job i's end as it comes; after Ctrl-C/SIGTERM no more
    jobs start and the interrupt is raised once the running ones have ended."""
    todo = list(enumerate(job_overrides))
    results: dict[int, JobReturn] = {}

    def take(free: int, running: int) -> list[tuple[list[str], int]]:
        chosen = todo[:free]
        del todo[:free]
        return [(list(overrides), i) for i, overrides in chosen]

    def record(i: int, result: JobReturn) -> None:
        results[i] = result
        if ended is not None:
            ended(i, result)

    keep_busy(pool, concurrency, first_idx, take, record)
    return [results[i] for i in range(len(job_overrides))]


def job_pool(launcher: Any, one_by_one: bool) -> AbstractContextManager[JobPool]:
    """The launcher's job pool when `one_by_one` and it has one (`batches_because` is None), else
    its `launch` in batches."""
    if one_by_one and callable(getattr(launcher, "job_pool", None)):
        pool: AbstractContextManager[JobPool] = launcher.job_pool()
        return pool
    if one_by_one and is_submitit_launcher(launcher):
        return submitit_pool(launcher)
    return nullcontext(BatchPool(launcher))


def batches_because(launcher: Any, async_trials: bool) -> str | None:
    """Why trials run in batches, in words for the sweep's line; None when they need not."""
    if not async_trials:
        return "hydra.sweeper.async_trials=false"
    if callable(getattr(launcher, "job_pool", None)) or is_submitit_launcher(launcher):
        return None
    return (f"the launcher {type(launcher).__name__} runs whole batches only (hydra/launcher=parallel or "
            "submitit_local/submitit_slurm start each trial as soon as a worker is free)")


class BatchJob:
    """A job of a `BatchPool`: queued until the pool's next `wait` launches it."""

    def __init__(self, overrides: list[str], idx: int) -> None:
        self.overrides = overrides
        self.idx = idx
        self.returned: JobReturn | None = None

    def done(self) -> bool:
        return self.returned is not None

    def result(self) -> JobReturn:
        assert self.returned is not None, "result() of a job its pool has not launched"
        return self.returned


class BatchPool:
    """Hydra's `Launcher.launch` as a job pool: `submit` queues a job, `wait` launches every queued
    job as one batch (numbered from the first one's index, as Hydra numbers a batch) and returns
    once all have ended, whatever `timeout`: `launch` cannot return sooner."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher
        self.queued: list[BatchJob] = []

    def submit(self, overrides: Sequence[str], idx: int) -> BatchJob:
        job = BatchJob(list(overrides), idx)
        self.queued.append(job)
        return job

    def wait(self, jobs: Sequence[Job], timeout: float) -> list[Job]:
        batch, self.queued = self.queued, []
        if batch:
            assert [job.idx for job in batch] == list(range(batch[0].idx, batch[0].idx + len(batch)))
            results = self.launcher.launch([job.overrides for job in batch], initial_job_idx=batch[0].idx)
            for job, result in zip(batch, results, strict=True):
                job.returned = result
        return [job for job in jobs if job.done()]


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
