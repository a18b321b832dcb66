"""ParallelLauncher: Hydra's joblib launcher (loky processes) with a clean stop on Ctrl-C and SIGTERM.

Each job runs in a worker process of its own, so each has its own Keras backend, and workers are
reused across the batches of a sweep (imports, data and compiled programs stay warm).

Why not the joblib launcher as it is: on Ctrl-C joblib kills its workers at once (SIGKILL),
while they are still training, so their MLflow runs stay RUNNING for ever. Here the first
Ctrl-C or SIGTERM is passed to the running jobs, which stop after their current batch (see
lstmlab.interrupts), end their runs as KILLED (a sweep's trials are queued again by the sweeper)
and return; jobs not started yet do not start; then the command stops with "interrupted" or
"terminated". The signal a second time, or `interrupt_grace_s` without an answer, kills them.
A worker whose launching process died (kill -9) stops its job the same way and exits
(_parent_watch.py).

Besides Hydra's `launch` (a batch, awaited whole), `job_pool` hands the sweeper the same workers
job by job (_pool.py), so it can start the next trial the moment any worker is free.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from lstmlab import interrupts
from lstmlab.plural import count

from . import _parent_watch
from ._compat import execute_hydra_job, parallel_options, reusable_executor
from ._pool import FuturePool
from .config import ParallelLauncherConf  # noqa: F401 - registers hydra/launcher=parallel

log = logging.getLogger(__name__)


class ParallelLauncher(JoblibLauncher):
    def __init__(self, interrupt_grace_s: int = 30, **joblib_kwargs: Any) -> None:
        super().__init__(**joblib_kwargs)
        self.interrupt_grace_s = interrupt_grace_s

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed, effective_n_jobs

        sweep_dir = self._prepare()
        options = parallel_options(self.joblib)
        log.info(f"Launching {count(len(job_overrides), 'job')}, {effective_n_jobs(options['n_jobs'])} at once, "
                 f"sweep output dir : {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")
        singleton_state = Singleton.get_state()
        launched_at = time.time()
        with graceful_interrupt(self.interrupt_grace_s):
            return Parallel(**options)(
                delayed(execute_job)(os.getpid(), launched_at, self.interrupt_grace_s, initial_job_idx + idx,
                                     overrides, self.hydra_context, self.config, self.task_function,
                                     singleton_state)
                for idx, overrides in enumerate(job_overrides)
            )

    @contextmanager
    def job_pool(self) -> Iterator[FuturePool]:
        """The workers `launch` uses, job by job: `submit(overrides, idx)` starts a job as soon as
        a worker is free. On leaving: the workers are shut down; after an error with jobs still
        running, those are asked to stop first (as Ctrl-C asks them); after a second Ctrl-C or
        SIGTERM, killed at once."""
        from joblib import effective_n_jobs

        sweep_dir = self._prepare()
        workers = effective_n_jobs(parallel_options(self.joblib)["n_jobs"])
        log.info(f"Launching jobs as workers free up, {workers} at once, sweep output dir : {sweep_dir}")
        assert self.hydra_context is not None and self.task_function is not None
        job = partial(execute_job, os.getpid(), grace_s=self.interrupt_grace_s, hydra_context=self.hydra_context,
                      config=self.config, task_function=self.task_function)
        pool = FuturePool(partial(reusable_executor, workers), job)
        with graceful_interrupt(self.interrupt_grace_s):
            try:
                yield pool
            except KeyboardInterrupt:  # the signal a second time: stop now, as joblib does
                pool.executor.shutdown(wait=False, kill_workers=True)
                raise
            except BaseException:
                if pool.running():
                    pass_on(signal.SIGTERM)
                    pool.wait_all(self.interrupt_grace_s)
                pool.executor.shutdown(wait=False, kill_workers=True)
                raise
        pool.executor.shutdown(wait=True)

    def _prepare(self) -> Path:
        """What every launch does first: Hydra's globals and log, the sweep folder."""
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        return sweep_dir


def execute_job(launcher_pid: int, launched_at: float, grace_s: float, idx: int, overrides: Sequence[str],
                hydra_context: HydraContext, config: DictConfig, task_function: TaskFunction,
                singleton_state: dict[Any, Any]) -> JobReturn:
    """One job, as Hydra's joblib launcher runs it, under lstmlab's stop handling.

    In a worker process, an interrupted job returns (status FAILED, KeyboardInterrupt) instead of
    raising, so joblib does not kill the others while they still clean up, and a job of a launch
    interrupted already does not start. Joblib runs a job in the launching process itself when
    it runs one at a time (n_jobs=1): that process's own handlers stay, and an interrupt goes up.
    """
    in_worker = os.getpid() != launcher_pid
    if in_worker:
        if _parent_watch.orphaned(launcher_pid):  # queued before the launching process died
            return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=KeyboardInterrupt())
        interrupts.install_in_worker(since=launched_at)
        _parent_watch.watch(launcher_pid, grace_s)
    try:
        interrupts.check()  # a job of a launch interrupted already does not start
        with _parent_watch.job():
            return execute_hydra_job(idx, overrides, hydra_context, config, task_function, singleton_state)
    except KeyboardInterrupt as interrupt:
        if not in_worker:
            raise
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                         _return_value=interrupts.as_result(interrupt))


@contextmanager
def graceful_interrupt(grace: float) -> Iterator[None]:
    """In the launching process while jobs run: the first Ctrl-C or SIGTERM (recorded by
    lstmlab.interrupts) is passed on to the workers and their jobs are awaited; the signal a
    second time, or `grace` seconds later, interrupts at once (joblib then kills the workers).
    Afterwards the launch raises the interrupt."""
    timers: list[threading.Timer] = []

    def stop_workers(number: int) -> None:
        pass_on(number)
        timer = threading.Timer(grace, interrupts.repeat, args=(number,))
        timer.daemon = True
        timer.start()
        timers.append(timer)

    with interrupts.listening(stop_workers):
        try:
            yield
        except Exception:
            # A worker that was idle when Ctrl-C came may have died of it (joblib reports a
            # terminated worker): to the user this is the same interruption.
            interrupts.check()
            raise
        finally:
            for timer in timers:
                timer.cancel()
    interrupts.check()


def pass_on(number: int) -> None:
    """Signal `number` to every worker process. A Ctrl-C in a terminal reached them already;
    `kill -INT` or SIGTERM did not."""
    for worker in multiprocessing.active_children():
        if worker.pid is None:
            continue
        try:
            os.kill(worker.pid, number)
        except OSError:
            pass
