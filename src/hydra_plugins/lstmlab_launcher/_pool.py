"""Jobs submitted one by one to the launcher's worker processes, awaited as they end.

Hydra's `Launcher.launch` takes a batch and returns when its slowest job has ended, so a sweep
through it leaves workers idle. The sweeper (hydra_plugins.lstmlab_optuna_sweeper._jobs) uses
this instead when the launcher offers it: `submit` puts one job on the process pool (a
`concurrent.futures` executor), `wait` returns as soon as any job has ended.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides

log = logging.getLogger(__name__)


class PoolJob:
    """One submitted job: `done()`, and its `result()` as a JobReturn (a worker that died is a
    failed job, not an exception)."""

    def __init__(self, future: concurrent.futures.Future[JobReturn], overrides: list[str]) -> None:
        self.future = future
        self.overrides = overrides

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> JobReturn:
        try:
            return self.future.result()
        except Exception as error:  # noqa: BLE001 - e.g. loky's TerminatedWorkerError: this job failed
            return JobReturn(overrides=self.overrides, status=JobStatus.FAILED, _return_value=error)


class FuturePool:
    """`submit(overrides, idx)` → a PoolJob; `wait(jobs, timeout)` → those that have ended, as
    soon as one has (or none after `timeout` seconds)."""

    def __init__(self, make_executor: Callable[[], Any],
                 job: Callable[..., JobReturn]) -> None:
        self.make_executor = make_executor
        self.executor = make_executor()  # loky's: its shutdown also takes kill_workers
        self.job = job  # execute_job with the launcher's part bound
        self.submitted: list[PoolJob] = []

    def submit(self, overrides: Sequence[str], idx: int) -> PoolJob:
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        try:
            future = self._submit(overrides, idx)
        except RuntimeError:  # loky's BrokenProcessPool, ShutdownExecutorError
            # A worker died (the OOM killer, a crash): loky failed the jobs it ran and takes no
            # more; a new pool will (get_reusable_executor makes one, as joblib does per batch).
            self.executor = self.make_executor()
            future = self._submit(overrides, idx)
        submitted = PoolJob(future, list(overrides))
        self.submitted = [*(j for j in self.submitted if not j.done()), submitted]
        return submitted

    def _submit(self, overrides: Sequence[str], idx: int) -> concurrent.futures.Future[JobReturn]:
        return self.executor.submit(self.job, launched_at=time.time(), idx=idx, overrides=list(overrides),
                                    singleton_state=Singleton.get_state())

    def wait(self, jobs: Sequence[PoolJob], timeout: float) -> list[PoolJob]:
        done, _ = concurrent.futures.wait([j.future for j in jobs], timeout=timeout,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        return [j for j in jobs if j.future in done]

    def running(self) -> list[PoolJob]:
        return [j for j in self.submitted if not j.done()]

    def wait_all(self, timeout: float) -> None:
        concurrent.futures.wait([j.future for j in self.submitted], timeout=timeout)
