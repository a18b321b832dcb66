"""The private/experimental Optuna, Hydra and submitit APIs the sweep relies on (lstmlab.sweep.optuna_ids,
heartbeat_storage, submitit_jobs; the sweeper's _jobs and _tally; the launcher's _compat), on a real storage:
an upgrade that moves one of them fails here, by name."""

from __future__ import annotations

import optuna
import pytest
from hydra.core.utils import JobStatus
from optuna.trial import TrialState

from hydra_plugins.lstmlab_optuna_sweeper import _jobs, _tally
from lstmlab.sweep import heartbeat_storage, optuna_ids, submitit_jobs


@pytest.fixture
def study(tmp_path) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    return optuna.create_study(study_name="compat", storage=storage)


def test_ids_are_the_storage_ids(study: optuna.Study) -> None:
    study.ask()  # trial 0, so that trial 1's id and number can differ from the study's first
    trial = study.ask()
    storage = study._storage
    assert optuna_ids.study_id(study) == storage.get_study_id_from_name("compat")
    assert optuna_ids.trial_id(trial) == storage.get_trial_id_from_study_id_trial_number(optuna_ids.study_id(study), 1)
    assert storage.get_trial(optuna_ids.trial_id(trial)).number == 1


def test_running_trial_reaches_the_same_trial_from_another_study_object(study: optuna.Study) -> None:
    asked = study.ask()
    again = optuna.load_study(study_name="compat", storage=study._storage)
    trial = optuna_ids.running_trial(again, again._storage, asked.number)
    trial.report(1.5, step=0)
    assert study.trials[asked.number].intermediate_values == {0: 1.5}
    assert optuna_ids.trial_id(trial) == optuna_ids.trial_id(asked)


def test_retry_history_names_the_trial_a_retry_replaces(study: optuna.Study) -> None:
    failed = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(failed, state=TrialState.FAIL)
    optuna.storages.RetryFailedTrialCallback()(study, study.trials[failed.number])
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == study.trials[failed.number].params
    assert _tally.retry_history(retry) == [failed.number]
    assert _tally.retry_history(study.trials[failed.number]) == []


def test_failed_job_keeps_its_error_without_raising_it() -> None:
    error = ValueError("bad value")
    result = _jobs.failed_job(["a=1"], error)
    assert result.status == JobStatus.FAILED and result.overrides == ["a=1"]
    assert _jobs.job_error(result) is error
    with pytest.raises(ValueError):  # why job_error exists: the public property re-raises
        _ = result.return_value


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_running_trial_that_never_beat_is_stale_once_its_start_is_past_the_grace(tmp_path) -> None:
    from datetime import datetime, timedelta

    storage = heartbeat_storage.HeartbeatStorage(
        f"sqlite:///{tmp_path / 'beats.db'}", heartbeat_interval=60, grace_period=180,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback())
    study = optuna.create_study(study_name="beats", storage=storage)
    started = {"old": datetime.now() - timedelta(minutes=10), "new": datetime.now()}
    ids = {name: storage.create_new_trial(optuna_ids.study_id(study), template_trial=optuna.trial.create_trial(
        state=TrialState.RUNNING, params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)})) for name in started}
    with storage.engine.begin() as connection:  # when each started: the only thing that differs
        for name, when in started.items():
            connection.exec_driver_sql("UPDATE trials SET datetime_start = ? WHERE trial_id = ?",
                                       (when.strftime("%Y-%m-%d %H:%M:%S.%f"), ids[name]))
    beating = storage.create_new_trial(optuna_ids.study_id(study), template_trial=optuna.trial.create_trial(
        state=TrialState.RUNNING))
    storage.record_heartbeat(beating)  # beats now: never stale here
    optuna.storages.fail_stale_trials(study)  # Optuna asks the storage's _get_stale_trial_ids
    states = {optuna_ids.frozen_trial_id(t): t.state for t in study.get_trials()}
    assert states[ids["old"]] == TrialState.FAIL
    assert states[ids["new"]] == states[beating] == TrialState.RUNNING
    (retry,) = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert retry.params == {"x": 0.5} and _tally.retry_history(retry) == [0]


def test_the_joblib_launchers_private_core_is_what_the_parallel_launcher_relies_on() -> None:
    """hydra_plugins.lstmlab_launcher._compat: every option of Hydra's JobLibLauncherConf is one
    joblib.Parallel takes (upstream's main adds `inner_max_num_threads`, which it is not), and
    `_core` keeps the two functions the launcher calls, with the same parameters and effect."""
    import dataclasses
    import inspect

    import joblib

    from hydra_plugins.hydra_joblib_launcher import _core
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from hydra_plugins.lstmlab_launcher import _compat

    options = {f.name for f in dataclasses.fields(JobLibLauncherConf)} - {"_target_"}
    assert options == set(_compat.PARALLEL_OPTIONS)
    assert options <= set(inspect.signature(joblib.Parallel).parameters)
    assert list(inspect.signature(_core.execute_job).parameters) == [
        "idx", "overrides", "hydra_context", "config", "task_function", "singleton_state"]
    assert _compat.execute_hydra_job is _core.execute_job
    given = {"n_jobs": 2, "backend": None, "batch_size": "4", "pre_dispatch": "8", "max_nbytes": "1M"}
    assert _compat.parallel_options(given) == {"n_jobs": 2, "backend": "loky", "batch_size": 4,
                                               "pre_dispatch": 8, "max_nbytes": "1M"}
    assert given["batch_size"] == "4"  # the launcher's own options are left as they were


@pytest.mark.slow
def test_the_loky_pool_the_parallel_launcher_submits_to_is_joblibs_and_a_futures_executor() -> None:
    """_compat.reusable_executor: joblib's vendored loky pool, whose futures the sweeper waits on
    and whose workers it kills after a second Ctrl-C."""
    import concurrent.futures
    import inspect

    from joblib.externals import loky

    from hydra_plugins.lstmlab_launcher import _compat

    executor = _compat.reusable_executor(1)
    assert isinstance(executor, concurrent.futures.Executor)
    assert executor is loky.get_reusable_executor(max_workers=1)  # the same pool, reused
    assert "kill_workers" in inspect.signature(executor.shutdown).parameters
    assert executor.submit(int, "7").result(timeout=60) == 7


@pytest.mark.slow
def test_the_submitit_launchers_executor_and_job_arguments_are_built_as_its_launch_builds_them(tmp_path) -> None:
    """submitit_jobs.submitit_executor and submitit_job_args repeat what hydra-submitit-launcher's
    `launch` does before `map_array`; when `launch` changes how, this fails."""
    import inspect

    import submitit

    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        BaseSubmititLauncher,
        LocalLauncher,
        SlurmLauncher,
    )

    source = inspect.getsource(BaseSubmititLauncher.launch)
    for piece in ('init_params = {"folder": self.params["submitit_folder"]}',
                  'specific_init_keys = {"max_num_timeout"}',
                  "submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)",
                  'x if x in baseparams else f"{self._EXECUTOR}_{x}": y',
                  '"hydra.sweep.dir",', 'f"job_id_for_{idx}",', "Singleton.get_state(),",
                  "executor.map_array(self, *zip(*job_params))",
                  # submitit_jobs.make_sweep_dir, and what hydra_plugins.lstmlab_launcher.submitit_launchers's launch returns
                  "sweep_dir.mkdir(parents=True, exist_ok=True)", "mode = int(str(self.config.hydra.sweep.mode), 8)",
                  "return [j.results()[0] for j in jobs]"):
        assert piece in source, piece
    assert list(inspect.signature(BaseSubmititLauncher.__call__).parameters) == [
        "self", "sweep_overrides", "job_dir_key", "job_num", "job_id", "singleton_state"]

    launcher = LocalLauncher(submitit_folder=str(tmp_path / "%j"), timeout_min=5, tasks_per_node=1,
                             nodes=1, name="train", max_num_timeout=3)
    executor = submitit_jobs.submitit_executor(launcher)
    assert submitit_jobs.is_submitit_launcher(launcher) and not submitit_jobs.is_submitit_launcher(object())
    assert isinstance(executor, submitit.AutoExecutor) and executor.cluster == "local"
    assert submitit_jobs.submitit_cluster(launcher) == "local" and submitit_jobs.submitit_cluster(SlurmLauncher()) == "slurm"
    assert executor._executor.parameters == {"timeout_min": 5, "tasks_per_node": 1, "nodes": 1, "name": "train"}
    overrides, job_dir_key, idx, job_id, _ = submitit_jobs.submitit_job_args(["a=1"], 3)
    assert (overrides, job_dir_key, idx, job_id) == (["a=1"], "hydra.sweep.dir", 3, "job_id_for_3")


def _started(job, deadline_s: float = 60) -> None:
    """Until the job's task runs its function (submitit has set its signal handlers by then)."""
    import time

    deadline = time.monotonic() + deadline_s
    while "Loading pickle" not in (job.stderr() or "") + (job.stdout() or ""):
        assert not job.done() and time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    time.sleep(1)


def _ended(job, deadline_s: float = 30) -> None:
    import time

    deadline = time.monotonic() + deadline_s
    while not job.done():
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_local_submitit_job_takes_sigterm_through_its_controller_and_cancel_kills_it(tmp_path) -> None:
    """What lstmlab.sweep.submitit_jobs relies on: asked to stop, a local job's controller passes
    SIGTERM on to its task, where submitit's own handler drops it ("Bypassing", which is why
    lstmlab's job sets its own); `cancel` ends a task that ignores it."""
    import signal
    import subprocess

    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="local")
    executor.update_parameters(timeout_min=5)
    asked = executor.submit(signal.pause)  # returns once a handler has run for a signal
    assert isinstance(asked._process, subprocess.Popen)  # the controller, what ask_submitit_job_to_stop signals
    _started(asked)
    submitit_jobs.ask_submitit_job_to_stop(asked, again=False)
    _ended(asked)
    assert asked.result() is None  # pause returned: the signal reached the task, whose job went on
    assert "Bypassing signal SIGTERM" in (asked.stderr() or "") + (asked.stdout() or "")
    submitit_jobs.ask_submitit_job_to_stop(asked, again=True)  # an ended job's controller: nothing happens

    cancelled = executor.submit(signal.pause)
    _started(cancelled)
    submitit_jobs.cancel_submitit_job(cancelled)
    _ended(cancelled)
    with pytest.raises(Exception):  # noqa: B017 - submitit's own errors: no result was written
        cancelled.result()


def test_the_private_storage_calls_of_optunas_cached_storage_are_the_ones_retried() -> None:
    """Optuna wraps a study's RDB storage in _CachedStorage, which calls some private RDBStorage
    methods; lstmlab.sweep.outages retries those by name (heartbeat_storage.CACHED_STORAGE_PRIVATE_CALLS), so
    a call added or renamed upstream must fail here, not go unretried in a restart."""
    import inspect
    import re

    from optuna.storages._cached_storage import _CachedStorage

    from lstmlab.sweep.outages import DATABASE_METHODS, RetryingStorage

    called = set(re.findall(r"self\._backend\.(_\w+)\(", inspect.getsource(_CachedStorage)))
    assert called == set(heartbeat_storage.CACHED_STORAGE_PRIVATE_CALLS)
    for name in called:
        assert name in DATABASE_METHODS
        assert getattr(RetryingStorage, name) is not getattr(heartbeat_storage.HeartbeatStorage, name)


def test_the_read_fallback_warning_dropped_is_still_optunas() -> None:
    """heartbeat_storage.quiet_read_fallback filters a warning by its logger and first words: both Optuna's."""
    import inspect
    import logging

    from optuna.storages._rdb import storage

    assert storage._logger.name == heartbeat_storage.RDB_STORAGE_LOGGER
    assert f'f"{heartbeat_storage.FALLBACK_WARNING}: {{e!s}}. "' in inspect.getsource(storage.RDBStorage._get_trials)
    heartbeat_storage.quiet_read_fallback()
    heartbeat_storage.quiet_read_fallback()  # once, however often storages are made
    logger = logging.getLogger(heartbeat_storage.RDB_STORAGE_LOGGER)
    assert len(logger.filters) == 1
    kept = logging.LogRecord(heartbeat_storage.RDB_STORAGE_LOGGER, logging.WARNING, "", 0, "other", None, None)
    dropped = logging.LogRecord(heartbeat_storage.RDB_STORAGE_LOGGER, logging.WARNING, "", 0,
                                f"{heartbeat_storage.FALLBACK_WARNING}: (psycopg2.OperationalError) server closed", None, None)
    assert logger.filter(kept) and not logger.filter(dropped)


def test_every_job_gets_the_sweeps_folder_and_masked_storage_though_hydra_made_its_node_read_only(tmp_path) -> None:
    # Hydra 1.4's multirun installs its config (HydraConfig.set_config: the `hydra` node read-only)
    # before the sweeper starts; 1.3 did so only per job. The sweeper still sets both for every job.
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from hydra_plugins.lstmlab_optuna_sweeper import _hydra_files
    from lstmlab.commands.hydra_compat import VERSION_BASE
    from lstmlab.paths import config_dir

    storage = "postgresql://user:Pw4Sweep@127.0.0.1/db"
    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        config = compose("train", [f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                   "hydra/sweeper=lstmlab_optuna"], return_hydra_config=True)
    HydraConfig.instance().set_config(config)
    assert OmegaConf.is_readonly(config.hydra)
    folder = _hydra_files.prepare(config, "postgresql://user:***@127.0.0.1/db")
    assert folder == tmp_path / "sweep" and (folder / "multirun.yaml").is_file()
    assert config.hydra.sweeper.storage == "postgresql://user:***@127.0.0.1/db"
    assert HydraConfig.get().sweeper.storage == "postgresql://user:***@127.0.0.1/db"  # what jobs are handed
    assert f"hydra.sweep.dir='{folder}'" in config.hydra.overrides.hydra
    assert "Pw4Sweep" not in " ".join(config.hydra.overrides.hydra) + (folder / "multirun.yaml").read_text()


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm"])
def test_the_submitit_launchers_hydra_makes_are_lstmlabs_that_stop_with_the_command(launcher) -> None:
    """hydra-submitit-launcher's configs name its own classes; the callback in conf/train.yaml
    points them at hydra_plugins.lstmlab_launcher.submitit_launchers before the launcher is made.
    When upstream renames its classes, this fails (and the jobs would no longer stop)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.plugins import Plugins
    from hydra.utils import instantiate

    from hydra_plugins.lstmlab_launcher.submitit_launchers import OURS, LocalLauncher, SlurmLauncher
    from lstmlab.commands.hydra_compat import VERSION_BASE
    from lstmlab.paths import config_dir

    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ in OURS
    (callback,) = [instantiate(node) for name, node in cfg.hydra.callbacks.items() if name == "submitit"]
    callback.on_multirun_start(config=cfg)
    made = Plugins.instance()._instantiate(cfg.hydra.launcher)  # as Plugins.instantiate_launcher makes it
    ours = LocalLauncher if launcher == "submitit_local" else SlurmLauncher
    # (by name: Hydra's plugin scan executes the module again, making its classes anew)
    assert (type(made).__module__, type(made).__qualname__) == (ours.__module__, ours.__qualname__)
    assert submitit_jobs.is_submitit_launcher(made)
