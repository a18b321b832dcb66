"""Submitit jobs stop with their command: Ctrl-C or SIGTERM to `lstmlab train` reaches them; and the
submitit internals both plugins build their jobs with (below JobStopper).

A submitit job runs in processes of its own (on this machine a controller and its task, on
SLURM a job on some node), which a signal to the command never reaches: after SIGTERM a
multirun's jobs trained all their epochs and ended FINISHED while the command said
"terminated". So whoever waits for submitit jobs (the launchers' `launch`, the sweeper's job
pool) calls `JobStopper.poll` as it waits: once a signal came (lstmlab.interrupts) each job still
running is asked to stop (SIGTERM, see ask_submitit_job_to_stop), which a job handles as any lstmlab
process does: its run ends KILLED after the current batch. A local task still starting up may
miss the first ask (submitit's own handler drops SIGTERM until the job sets lstmlab's), so it is
asked again at each poll; after `grace_s` (or the signal a second time, `cancel`) what still
runs is cancelled outright.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstmlab import interrupts

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


# hydra-submitit-launcher's `BaseSubmititLauncher.launch` builds a submitit executor from the
# launcher's options and submits the launcher itself (its `__call__` runs one job) as an array,
# awaited whole. The sweeper submits jobs one by one instead, so it builds the executor and each
# job's arguments as `launch` does: from the launcher's `params` and `_EXECUTOR` (private).
# tests/sweep/test_compat.py reads `launch` and fails when it stops building them this way.
SUBMITIT_INIT_KEYS = ("max_num_timeout",)  # `launch`'s specific_init_keys: executor arguments, not parameters


def submitit_executor(launcher: Any) -> Any:
    """The `submitit.AutoExecutor` hydra-submitit-launcher's `launch` would make for `launcher`."""
    import submitit
    from omegaconf import OmegaConf

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cluster, params = submitit_cluster(launcher), launcher.params
    executor = submitit.AutoExecutor(
        cluster=cluster, folder=params["submitit_folder"],
        **{f"{cluster}_{key}": value for key, value in params.items() if key in SUBMITIT_INIT_KEYS})
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{key if key in shared else f"{cluster}_{key}": value
                                  for key, value in params.items()
                                  if key not in (*SUBMITIT_INIT_KEYS, "submitit_folder")})
    return executor


def submitit_cluster(launcher: Any) -> str:
    """Which submitit executor the launcher runs: `local` or `slurm`."""
    return str(launcher._EXECUTOR)


def submitit_job_args(overrides: list[str], idx: int) -> tuple[Any, ...]:
    """The arguments `launch` gives the launcher's `__call__` for job `idx`."""
    from hydra.core.singleton import Singleton

    return (list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())


def make_sweep_dir(launcher: Any) -> Path:
    """The sweep folder, made as `launch` makes it (with `hydra.sweep.mode` when set)."""
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    return sweep_dir


# A submitit job is processes of its own. On this machine (submitit.local) each job is a
# controller process (`python -m submitit.local._local`, the job's `_process`) that passes SIGTERM
# on to its task and waits for it, while `job.cancel()` sends it SIGINT, on which it kills its task
# within a second. On SLURM `job.cancel()` is `scancel`: SIGTERM to the job's processes, SIGKILL
# after the cluster's KillWait. tests/sweep/test_compat.py checks the local part.


def ask_submitit_job_to_stop(job: Any, again: bool) -> None:
    """SIGTERM to a running submitit job's task (its run then ends KILLED after the current batch;
    see hydra_plugins.lstmlab_launcher.submitit_launchers). `again`: it was asked before (a local
    task still starting up may have missed it; scancel once is enough)."""
    process = getattr(job, "_process", None)
    if process is not None:  # a local job: its controller passes it on
        process.send_signal(signal.SIGTERM)  # Popen: nothing once the controller has been reaped
    elif not again:
        job.cancel(check=False)


def cancel_submitit_job(job: Any) -> None:
    """A submitit job stopped now: the task killed within a second (local), or scancel (SLURM)."""
    job.cancel(check=False)


def is_submitit_launcher(launcher: Any) -> bool:
    try:
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
    except ImportError:
        return False
    return isinstance(launcher, BaseSubmititLauncher)
