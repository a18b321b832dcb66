"""ParallelLauncher: Hydra's joblib launcher (loky processes) with a clean stop on Ctrl-C.

Each job runs in a worker process of its own, so each has its own Keras backend, and workers are
reused across the batches of a sweep (imports, data and compiled programs stay warm).

Why not the joblib launcher as it is: on Ctrl-C joblib kills its workers at once (SIGKILL),
while they are still training, so their MLflow runs stay RUNNING for ever. Here the first
Ctrl-C is passed to the running jobs, which end their runs as failed (and a sweep's trials are
queued again by the sweeper) and return; jobs not started yet do not start; then the command
stops with "interrupted". A second Ctrl-C, or `interrupt_grace_s` without an answer, kills them.
"""

from __future__ import annotations

import _thread
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from lstmlab.runtime import request_stop

from .config import ParallelLauncherConf  # noqa: F401 - registers hydra/launcher=parallel

log = logging.getLogger(__name__)


class ParallelLauncher(JoblibLauncher):
    def __init__(self, interrupt_grace_s: int = 30, **joblib_kwargs: Any) -> None:
        super().__init__(**joblib_kwargs)
        self.interrupt_grace_s = interrupt_grace_s

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from joblib import Parallel, delayed

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        options = {**self.joblib, "backend": "loky"}  # processes: threads would share one Keras
        for key in ("pre_dispatch", "batch_size", "max_nbytes"):  # "8" from a YAML string → 8
            if isinstance(options.get(key), str) and options[key].isdigit():
                options[key] = int(options[key])
        log.info(f"Launching {len(job_overrides)} jobs, {effective_n_jobs(options['n_jobs'])} at once, "
                 f"sweep output dir : {sweep_dir}")
        for idx, overrides in enumerate(job_overrides):
            log.info(f"\t#{initial_job_idx + idx} : {' '.join(filter_overrides(overrides))}")
        singleton_state = Singleton.get_state()
        launched_at = time.time()
        with GracefulInterrupt(self.interrupt_grace_s):
            return Parallel(**options)(
                delayed(execute_job)(initial_job_idx + idx, launched_at, overrides, self.hydra_context, self.config,
                                     self.task_function, singleton_state)
                for idx, overrides in enumerate(job_overrides)
            )


def effective_n_jobs(n_jobs: int | None) -> int:
    """How many jobs run at once for joblib's `n_jobs` (-1: every core this process may use)."""
    from joblib import effective_n_jobs as count

    return count(n_jobs)


# In a worker process (loky reuses them across launches): when Ctrl-C last came, and whether a
# job runs now.
_interrupted_at = 0.0
_in_job = False


def _on_sigint(signum: int, frame: Any) -> None:
    """Ctrl-C in a worker: a running job is asked to stop (training stops at its next batch, see
    lstmlab.runtime.request_stop: raising here could cut a database write short); jobs of this
    launch not started yet do not start."""
    global _interrupted_at
    _interrupted_at = time.time()
    if _in_job:
        request_stop()


def execute_job(idx: int, launched_at: float, overrides: Sequence[str], hydra_context: HydraContext,
                config: DictConfig, task_function: TaskFunction, singleton_state: dict[Any, Any]) -> JobReturn:
    """One job in a worker process, as Hydra's joblib launcher runs it; an interrupted job
    returns (status FAILED, KeyboardInterrupt) instead of raising, so joblib does not kill the
    others while they still clean up. A job of a launch interrupted already does not start."""
    global _in_job
    signal.signal(signal.SIGINT, _on_sigint)
    request_stop(False)  # a stop asked of an earlier launch's job in this reused worker
    if _interrupted_at >= launched_at:
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=KeyboardInterrupt())
    setup_globals()
    Singleton.set_state(singleton_state)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    _in_job = True
    try:
        if _interrupted_at >= launched_at:  # Ctrl-C came while the job was being set up
            request_stop()
        return run_job(hydra_context=hydra_context, config=sweep_config, task_function=task_function,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except KeyboardInterrupt as interrupt:
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=interrupt)
    finally:
        _in_job = False


class GracefulInterrupt:
    """In the launching process while jobs run: the first Ctrl-C is passed on to the workers and
    their jobs are awaited; a second one, or `grace` seconds, interrupt at once (joblib then
    kills the workers). Afterwards the launch raises KeyboardInterrupt."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.interrupted = False
        self.timer: threading.Timer | None = None
        self.previous: Any = None

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        print(f"interrupted: stopping the running jobs (up to {self.grace:g} s; Ctrl-C again to kill "
              "them now)", file=sys.stderr, flush=True)
        for pid in _child_pids():  # a Ctrl-C in a terminal reached them already; `kill -INT` did not
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass
        self.timer = threading.Timer(self.grace, _thread.interrupt_main)
        self.timer.daemon = True
        self.timer.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self.timer is not None:
            self.timer.cancel()
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.interrupted and not isinstance(exc, KeyboardInterrupt):
            # A worker that was idle when Ctrl-C came may have died of it (joblib reports a
            # terminated worker): to the user this is the same interruption.
            raise KeyboardInterrupt
        return False


def _child_pids() -> list[int]:
    """This process's children (the loky workers), from /proc where there is one (Linux)."""
    me, children = os.getpid(), []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            children.append(int(entry))
    return children
