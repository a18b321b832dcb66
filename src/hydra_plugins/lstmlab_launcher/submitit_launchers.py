"""`hydra/launcher=submitit_local|submitit_slurm` whose jobs stop with the command.

hydra-submitit-launcher's launchers, changed in two places. Their `launch` waits for its jobs
in a loop that lets Ctrl-C or SIGTERM reach them (lstmlab.sweep.submitit_jobs: each asked to
stop, cancelled after a grace), then raises the interrupt: the command exits 130 or 143 within
seconds of its jobs. And a job (`__call__`, in the job's own process) handles the signal as any
lstmlab process does, its run ending KILLED after the current batch, where submitit's handler
dropped SIGTERM and the job trained to its end. The Optuna sweeper submits trials through the
same launcher object (its _jobs.SubmititPool), so its trials stop the same way.

Hydra makes the launcher from `hydra.launcher._target_`, which hydra-submitit-launcher's configs
set to its own classes; `StoppableSubmitit`, a Hydra callback of conf/train.yaml, points it at
these before the launcher is made (on_multirun_start), and the launcher points it back once
made (setup). The executor and each job's arguments are
built as upstream's `launch` builds them (lstmlab.sweep.submitit_jobs, checked by tests/sweep/test_compat.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from hydra_plugins.hydra_submitit_launcher import submitit_launcher as upstream
from lstmlab import interrupts
from lstmlab.sweep.submitit_jobs import POLL_S, JobStopper, make_sweep_dir, submitit_executor, submitit_job_args

log = logging.getLogger(__name__)


class _StopsWithTheCommand:
    """What both launchers add to upstream's (a mixin: upstream's `_EXECUTOR` names the cluster)."""

    _EXECUTOR: str
    config: DictConfig | None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)  # type: ignore[misc]
        # This launcher is made: give hydra.launcher._target_ back the value the user's config
        # composes to. Hydra 1.4 composes every job's config again and refuses a multirun whose
        # hydra.launcher differs from the job's ("must be configured before the sweep starts").
        launcher = config.hydra.launcher
        with read_write(launcher), open_dict(launcher):
            launcher._target_ = UPSTREAM.get(launcher._target_, launcher._target_)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        executor = submitit_executor(self)
        log.info(f"Submitit '{self._EXECUTOR}' sweep output dir : {self.config.hydra.sweep.dir}")
        make_sweep_dir(self)
        arguments = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            arguments.append(submitit_job_args(list(overrides), idx))
        jobs = executor.map_array(self, *zip(*arguments))
        stopper = JobStopper()
        try:
            while not all(job.done() for job in jobs):
                stopper.poll(jobs)
                time.sleep(POLL_S.get(self._EXECUTOR, 2.0))
        except BaseException:  # the signal a second time (or a failure while waiting): stop them now
            stopper.cancel(jobs)
            raise
        interrupts.check()  # the jobs were stopped: the command says so
        return [job.results()[0] for job in jobs]

    def __call__(self, sweep_overrides: list[str], *args: Any) -> JobReturn:
        """One job, in its own process: Ctrl-C and SIGTERM recorded as in any lstmlab process (a
        second one too: the launching process cancels the job if it must); a stopped job returns
        FAILED with the interrupt, as the parallel launcher's do."""
        interrupts.install_in_worker(since=time.time())
        try:
            result: JobReturn = super().__call__(sweep_overrides, *args)  # type: ignore[misc]
            return result
        except KeyboardInterrupt as stop:
            return JobReturn(overrides=list(sweep_overrides), status=JobStatus.FAILED,
                             _return_value=interrupts.as_result(stop))


class LocalLauncher(_StopsWithTheCommand, upstream.LocalLauncher):
    pass


class SlurmLauncher(_StopsWithTheCommand, upstream.SlurmLauncher):
    pass


OURS = {f"{cls.__module__}.{cls.__qualname__}": f"{__name__}.{ours.__qualname__}"
        for cls, ours in ((upstream.LocalLauncher, LocalLauncher), (upstream.SlurmLauncher, SlurmLauncher))}
UPSTREAM = {ours: theirs for theirs, ours in OURS.items()}


class StoppableSubmitit(Callback):
    """conf/train.yaml's `hydra.callbacks.submitit`: a multirun on hydra-submitit-launcher's
    launchers runs on the ones above."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.get("launcher")
        target = launcher.get("_target_") if launcher is not None else None
        if target in OURS:
            with read_write(launcher), open_dict(launcher):
                launcher._target_ = OURS[target]
