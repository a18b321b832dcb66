"""How the sweeper starts trials: one by one as workers free up, where the launcher can, else in
Hydra's batches.

Hydra's `Launcher.launch` runs a batch and returns when its slowest job has ended: workers that
finished early wait. A job pool instead takes jobs one at a time (`submit(overrides, idx)` → a
job with `done()` and `result()` → JobReturn) and `wait(jobs, timeout)` returns those that have
ended as soon as one has. Two launchers offer one, each on its own engine:
- `hydra/launcher=parallel`: its `job_pool()`, futures of the loky process pool it runs on;
- `submitit_local` / `submitit_slurm`: submitit's own jobs, from the executor the launcher would
  build (lstmlab.sweep.compat), polled with `done()`.
Any other launcher (basic, joblib, ray) runs batches; `batches_because` says why in one line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from hydra.core.utils import JobReturn, filter_overrides

from lstmlab.sweep.compat import failed_job, is_submitit_launcher, submitit_cluster, submitit_executor, submitit_job_args

log = logging.getLogger(__name__)

# How often submitit's jobs are asked `done()`: it looks for the job's result file (on SLURM in a
# shared folder, refreshing its cache) and asks sacct at most every minute or so by itself.
SUBMITIT_POLL_S = {"local": 0.5, "slurm": 2.0}


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
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    log.info(f"{type(launcher).__name__}: a submitit job per trial as workers free up, sweep output dir : {sweep_dir}")
    yield SubmititPool(executor, launcher, SUBMITIT_POLL_S.get(submitit_cluster(launcher), 2.0))


class SubmititPool:
    """Jobs through submitit's executor, one `submit` each (the launcher itself is the job's
    function, as in its own `launch`)."""

    def __init__(self, executor: Any, launcher: Any, poll_s: float) -> None:
        self.executor = executor
        self.launcher = launcher
        self.poll_s = poll_s

    def submit(self, overrides: Sequence[str], idx: int) -> SubmititJob:
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        return SubmititJob(self.executor.submit(self.launcher, *submitit_job_args(list(overrides), idx)),
                           list(overrides))

    def wait(self, jobs: Sequence[Job], timeout: float) -> list[Job]:
        deadline = time.monotonic() + timeout
        while True:
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
        try:
            result: JobReturn = self.job.result()
            return result
        except Exception as error:  # noqa: BLE001 - submitit's FailedJobError and kin: this job failed
            return failed_job(self.overrides, error)
