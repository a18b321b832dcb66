"""Compat: every private or experimental Optuna/Hydra/submitit API the sweep relies on, in one place.

Optuna's storages speak in trial ids while its public `Trial`/`Study` hide them, and Hydra's
`JobReturn.return_value` re-raises a failed job's error instead of returning it. When an upgrade
moves one of these, tests/sweep/test_compat.py fails here, not somewhere inside a sweep.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState


def trial_id(trial: optuna.Trial) -> int:
    """The storage id of a running trial (what heartbeats and `storage.get_trial` take)."""
    return trial._trial_id


def frozen_trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The storage id of a trial as `get_trials` returns it."""
    return trial._trial_id


def study_id(study: optuna.Study) -> int:
    """The storage id of a study (what `storage.get_trial_id_from_study_id_trial_number` takes)."""
    return study._study_id


def job_error(result: JobReturn) -> BaseException | None:
    """A failed job's exception, without re-raising it (`JobReturn.return_value` would)."""
    return result._return_value if result.status == JobStatus.FAILED else None


def failed_job(overrides: list[str], error: BaseException) -> JobReturn:
    """A JobReturn for a job that failed before it was launched."""
    return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)


def retry_history(trial: optuna.trial.FrozenTrial) -> list[int]:
    """Numbers of the trials this one retries, oldest first ([] for an original trial)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(optuna.storages.RetryFailedTrialCallback.retry_history(trial))


def running_trial(study: optuna.Study, storage: Any, number: int) -> optuna.Trial:
    """The running trial `number` of `study`, as a `Trial` a job can report to."""
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id(study), number))


# The private RDBStorage methods that Optuna's _CachedStorage (which wraps the RDB storage of every
# Study: optuna.storages.get_storage) calls, besides public ones: lstmlab.sweep.outages retries
# them as it retries the public ones. tests/sweep/test_compat.py reads _CachedStorage for the list.
CACHED_STORAGE_PRIVATE_CALLS = ("_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids",
                                "_get_trials", "_set_trial_param")


# RDBStorage._get_trials takes any OperationalError of its one-query read for "too many variables"
# and falls back to a slower read, with a warning that quotes the error: during a database restart
# it says "Caught an error from sqlalchemy: ... server closed the connection" before the fallback
# fails too and lstmlab.sweep.outages says the outage in its own words. Dropped here (it is not
# actionable either way); tests/sweep/test_compat.py checks the logger and the words are still Optuna's.
RDB_STORAGE_LOGGER = "optuna.storages._rdb.storage"
FALLBACK_WARNING = "Caught an error from sqlalchemy"


def quiet_read_fallback() -> None:
    """Drop Optuna's "falling back to a slower alternative" warning (see above); once per process."""
    logger = logging.getLogger(RDB_STORAGE_LOGGER)
    if not any(isinstance(f, _FallbackFilter) for f in logger.filters):
        logger.addFilter(_FallbackFilter())


class _FallbackFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(FALLBACK_WARNING)


class HeartbeatStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, where a RUNNING trial with no heartbeat at all can be stale too.

    Optuna's own rule skips such a trial, so it stays RUNNING for good and every resume waits for
    it. `_get_stale_trial_ids` is the storage method `optuna.storages.fail_stale_trials` asks
    (private in Optuna; tests/sweep/test_compat.py checks it is still asked); the trials it adds are
    failed and queued again like any stale trial.
    """

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [i for i in self._never_beaten(study_id) if i not in stale]

    def _never_beaten(self, study_id: int) -> list[int]:
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return []
        query = sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids")
        query = query.bindparams(sqlalchemy.bindparam("ids", expanding=True))
        with self.engine.connect() as connection:
            ids = {"ids": [frozen_trial_id(t) for t in running]}
            beating = {row[0] for row in connection.execute(query, ids)}
        # Optuna records datetime_start in the worker's local time, as datetime.now().
        assert self.grace_period is not None  # _storage.open_storage always sets it
        started_before = datetime.now() - timedelta(seconds=self.grace_period)
        return [frozen_trial_id(t) for t in running if frozen_trial_id(t) not in beating
                and t.datetime_start is not None and t.datetime_start < started_before]


BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def planned_jobs(config: Any) -> int | None:
    """How many jobs Hydra's basic sweeper launches for this multirun (`config`: the multirun's,
    as `on_multirun_start` gets it); None under another sweeper. The sweeper keeps the count to
    itself, so it is worked out here the way `BasicSweeper.sweep` works out its batches."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    overrides = _basic_sweep(config)
    return None if overrides is None else len(BasicSweeper.split_arguments(overrides, None)[0])


def empty_sweeps(config: Any) -> list[str]:
    """The sweeps of this multirun that give no value (`variant=glob(nomatch*)`), as written:
    each makes the basic sweeper launch no job at all."""
    overrides = _basic_sweep(config) or []
    last = {override.get_key_element(): override for override in overrides}  # a later one wins, as in the sweeper
    return [str(override.input_line) for override in last.values()
            if override.is_sweep_override() and not list(override.sweep_string_iterator())]


def _basic_sweep(config: Any) -> list[Any] | None:
    """The multirun's overrides (`hydra.sweeper.params`, then the command line), parsed as the
    basic sweeper parses them (globs against the config groups); None under another sweeper."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return list(parser.parse_overrides([*params, *config.hydra.overrides.task]))


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
