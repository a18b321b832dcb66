"""The sweep loop: take trials under the study lock, launch them, record how they ended.

What counts towards `n_trials`: every trial that ran to a verdict (COMPLETE, PRUNED, FAIL) plus
those running or queued now. A trial whose worker died or was interrupted is FAIL too, but it is
queued again with the same params (Optuna's retry callback) and its retry takes its place, so
it is not counted: rerunning the same command continues until n_trials trials have finished,
nothing lost, nothing run twice. A worker leaves only when no trial of the study is running,
so a trial whose worker died is failed (after its heartbeats stop) and rerun by one that lives.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.sweep import parent
from lstmlab.sweep import study as identity
from lstmlab.sweep.compat import failed_job, job_error, retry_history, trial_id
from lstmlab.sweep.launchers import parallelism
from lstmlab.sweep.preflight import check_jobs
from lstmlab.sweep.pruners import make_pruner, pruner_spec
from lstmlab.tracking.open import check_store, use_store

from . import _tracking
from ._sampling import SamplerFactory, sampler_factory
from ._space import SearchSpace, format_value, parse_space, validate
from ._storage import StudyLock, open_storage, open_study, redact, resolve_url
from ._tally import Heartbeat, Tally

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .sweeper import LstmlabOptunaSweeper

WAIT_POLL_SECONDS = 5


def run_study(sweeper: LstmlabOptunaSweeper, arguments: list[str]) -> list[list[JobReturn]]:
    """Check everything the user gave, then open the study and run it to n_trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = parse_space(sweeper.params, arguments)
    if not space.dimensions:
        raise LstmlabError("the search space is empty: set hydra.sweeper.params (e.g. with "
                           "hparams_search=variants) or give a sweep such as "
                           "'model.dropout=interval(0,0.5)'")
    _check_numbers(sweeper)
    check_store(sweeper.config.tracking)  # a dead tracking server: said before anything is written
    composed: list[Any] = []  # the job configs validate composes, checked as a run would be
    validate(space, lambda overrides: composed.append(sweeper.compose(overrides)))
    check_jobs(composed)  # every config value and the data, before any storage
    data_cfg = sweeper.compose(list(space.fixed)).data
    if not sweeper.study_name:  # named after what it searches and the data: see lstmlab.sweep.study
        search = sweeper.config.hydra.runtime.choices.get("hparams_search")
        sweeper.study_name = identity.default_name(search, data_cfg)
    fingerprint = identity.data_fingerprint(data_cfg)
    sampler = sampler_factory(sweeper.sampler, sweeper.seed, space)
    pruner = pruner_spec(sweeper.pruner)
    make_pruner(pruner)
    n_trials = sweeper.n_trials
    grid = sampler.grid_size()
    if grid is not None and grid < n_trials:
        log.info(f"[sweep {sweeper.study_name}] the grid has {grid} points: running {grid} trials, "
              f"not {n_trials}")
        n_trials = grid
    url = resolve_url(sweeper.storage)
    lock = StudyLock(url, sweeper.study_name)
    with lock:
        storage = open_storage(url, sweeper.heartbeat_interval)
        experiment = use_store(sweeper.config.tracking)  # a read-only store: before the study
        study = open_study(storage, sweeper.study_name, sampler.make())
        identity.check_data(study, fingerprint, redact(url))
        _remember_setup(study, space)
        parent_id = parent.parent_run(study, experiment, redact(url))
    loop = StudyLoop(sweeper, study, storage, lock, space, sampler, pruner, n_trials, url,
                     parent_id)
    return loop.run()


def _check_numbers(sweeper: LstmlabOptunaSweeper) -> None:
    if not isinstance(sweeper.n_trials, int) or sweeper.n_trials < 1:
        raise LstmlabError(f"hydra.sweeper.n_trials={sweeper.n_trials} must be a whole number "
                           "of at least 1")
    sweeper.n_jobs = batch_size(sweeper.n_jobs, sweeper.config.hydra.launcher)
    if not 0 <= sweeper.max_failure_rate <= 1:
        raise LstmlabError(f"hydra.sweeper.max_failure_rate={sweeper.max_failure_rate} must be "
                           "in [0, 1]")
    if not isinstance(sweeper.heartbeat_interval, int) or sweeper.heartbeat_interval < 1:
        raise LstmlabError(f"hydra.sweeper.heartbeat_interval={sweeper.heartbeat_interval} must be "
                           "a whole number of seconds, at least 1")


def batch_size(n_jobs: Any, launcher: Any) -> int:
    """`hydra.sweeper.n_jobs` as a number: `auto` follows a parallel launcher's `n_jobs`
    (joblib's convention: -1 = every usable core), else 1."""
    if n_jobs == "auto":
        return parallelism(launcher) if launcher is not None and launcher.get("n_jobs") is not None else 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise LstmlabError(f"hydra.sweeper.n_jobs={n_jobs} must be a whole number of at least 1, "
                           "or auto")
    return n_jobs


def _remember_setup(study: optuna.Study, space: SearchSpace) -> None:
    """Store the space and fixed overrides with a new study; say so when a resume changes them."""
    setup = {"search_space": space.record(), "fixed_overrides": list(space.fixed)}
    for key, value in setup.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
        elif study.user_attrs[key] != value:
            log.info(f"[sweep {study.study_name}] note: {key.replace('_', ' ')} differ from the ones "
                  f"the study started with ({study.user_attrs[key]}); its trials mix both")


class StudyLoop:
    def __init__(self, sweeper: LstmlabOptunaSweeper, study: optuna.Study, storage: Any,
                 lock: StudyLock, space: SearchSpace, sampler: SamplerFactory,
                 pruner: dict[str, Any], n_trials: int, url: str, parent_id: str) -> None:
        self.sweeper = sweeper
        self.study = study
        self.storage = storage
        self.lock = lock
        self.space = space
        self.sampler = sampler
        self.pruner = pruner
        self.n_trials = n_trials
        self.url = url
        self.parent_id = parent_id
        self.name = study.study_name
        self.job_index = 0
        self.in_flight: list[optuna.Trial] = []

    def run(self) -> list[list[JobReturn]]:
        self._save_multirun_config()
        log.info(f"[sweep {self.name}] study {self.name!r} in {redact(self.url)}: "
              f"{Tally.of(self.study.get_trials(deepcopy=False)).finished} of {self.n_trials} "
              f"trials finished; {self.sweeper.n_jobs} at a time; MLflow parent run {self.parent_id}")
        returns: list[list[JobReturn]] = []
        try:
            waiting_said = False
            while True:
                interrupts.check()  # a safe point: between trials
                trials, tally = self._claim()
                if trials:
                    waiting_said = False
                    returns.append(self._run_batch(trials))
                elif tally.running:
                    if not waiting_said:
                        log.info(f"[sweep {self.name}] waiting for {tally.running} trial(s) running "
                                 f"in other workers (one silent for {self.storage.grace_period} s is "
                                 "failed and queued again; Ctrl-C stops waiting)")
                        waiting_said = True
                    time.sleep(min(WAIT_POLL_SECONDS, self.sweeper.heartbeat_interval))
                else:
                    break
        except StopSweep as stop:
            self._finish("FAILED")
            raise LstmlabError(str(stop)) from None
        except BaseException as error:
            self._give_back_in_flight()
            self._finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        self._finish("FINISHED")
        return returns

    def _claim(self) -> tuple[list[optuna.Trial], Tally]:
        """Under the study lock: fail stale trials, count, and ask for what the budget allows."""
        with self.lock:
            optuna.storages.fail_stale_trials(self.study)
            trials = self.study.get_trials(deepcopy=False)
            tally = Tally.of(trials)
            wanted = min(self.sweeper.n_jobs, max(0, self.n_trials - tally.used) + tally.waiting)
            asked = []
            for i in range(wanted):
                self.study.sampler = self.sampler.make(len(trials) + i)
                with warnings.catch_warnings():  # heartbeats are ours here, not optimize()'s
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    trial = self.study.ask(self.space.distributions)
                self.in_flight.append(trial)  # from here on, an interrupt gives it back
                self.storage.record_heartbeat(trial_id(trial))  # stale-able from the start
                asked.append(trial)
        return asked, tally

    def _run_batch(self, trials: list[optuna.Trial]) -> list[JobReturn]:
        jobs = []
        for trial in trials:
            overrides = [*self.space.overrides(trial.params), self._trial_override(trial)]
            try:
                self.sweeper.compose(overrides)
            except Exception as error:  # noqa: BLE001 - a composition error fails this trial only
                failure = self._record(trial, failed_job(overrides, error))
                self._check_failure_rate([failure] if failure else [])
                continue
            jobs.append((trial, overrides))
        if not jobs:
            self.in_flight = []
            return []
        self.in_flight = [trial for trial, _ in jobs]
        with Heartbeat(self.storage, [trial_id(t) for t in self.in_flight],
                       self.sweeper.heartbeat_interval):
            results = self.sweeper.launcher.launch([o for _, o in jobs],
                                                   initial_job_idx=self.job_index)
        self.job_index += len(jobs)
        failures = [self._record(trial, result) for (trial, _), result in zip(jobs, results)]
        self.in_flight = []
        self._check_failure_rate([f for f in failures if f is not None])
        return list(results)

    def _trial_override(self, trial: optuna.Trial) -> str:
        link = {"study": self.name, "storage": self.url, "number": trial.number,
                "parent_run_id": self.parent_id, "pruner": self.pruner}
        return f"trial={format_value(link)}"

    def _record(self, trial: optuna.Trial, result: JobReturn) -> str | None:
        """Tell Optuna how the job ended and print the progress line; a failure's one-line why."""
        value, state, detail = None, TrialState.FAIL, ""
        if result.status == JobStatus.COMPLETED:
            value = result.return_value
            if isinstance(value, (int, float)) and math.isfinite(value):
                state = TrialState.COMPLETE
            else:
                detail = f"the task returned {value!r}, not a finite val_rmse"
        else:
            error = job_error(result)
            detail = first_line(error, with_type=not isinstance(error, optuna.TrialPruned))
            if isinstance(error, optuna.TrialPruned):
                state = TrialState.PRUNED
            else:
                trial.set_user_attr("error", detail[:1000])
        if self.sampler.name in ("grid", "bruteforce"):
            # Their after_trial calls study.stop() once all points ran, which works only inside
            # study.optimize(); this loop stops by counting, so tell through a plain sampler.
            self.study.sampler = optuna.samplers.RandomSampler()
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state,
                        skip_if_finished=True)
        tally = Tally.of(self.study.get_trials(deepcopy=False))
        history = retry_history(self.storage.get_trial(trial_id(trial)))
        retry_of = history[0] if history else None
        self._progress(trial.number if retry_of is None else f"{trial.number} (rerun of {retry_of})",
                       state, value, detail, tally)
        return f"trial {trial.number}: {detail}" if state == TrialState.FAIL else None

    def _check_failure_rate(self, failures: list[str]) -> None:
        """Stop once a failure takes the study past max_failure_rate × n_trials failed trials."""
        if not failures:
            return
        failed = Tally.of(self.study.get_trials(deepcopy=False)).failed
        if failed > self.sweeper.max_failure_rate * self.n_trials:
            raise StopSweep(
                f"stopped the sweep: {failed} of {self.n_trials} trials failed, more than "
                f"hydra.sweeper.max_failure_rate={self.sweeper.max_failure_rate} allows (last: "
                f"{failures[-1]}); fix the cause or raise the rate, then rerun the same command "
                "to resume"
            )

    def _progress(self, number: int | str, state: TrialState, value: Any, detail: str,
                  tally: Tally) -> None:
        what = f"val_rmse={value:.4f}" if state == TrialState.COMPLETE else f"({detail})"
        best = (f"best: trial {tally.best.number} val_rmse={tally.best.value:.4f}"
                if tally.best is not None else "best: none yet")
        log.info(f"[sweep {self.name}] trial {number} {state.name} {what} | {best} | "
              f"{tally.finished}/{self.n_trials} finished")

    def _give_back_in_flight(self) -> None:
        """Interrupted (Ctrl-C, an error): fail our running trials and queue them again."""
        retry = self.storage.get_heartbeat_stale_trial_callback()
        for trial in self.in_flight:
            frozen = self.storage.get_trial(trial_id(trial))
            if frozen.state != TrialState.RUNNING:
                continue
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            if retry is not None:
                retry(self.study, self.storage.get_trial(trial_id(trial)))
            log.info(f"[sweep {self.name}] interrupted: trial {trial.number} is queued again; rerun "
                  "the same command to resume")

    def _finish(self, status: str) -> None:
        """Close orphaned child runs, write the parent's summary, end the parent run."""
        try:
            parent.close_orphaned_children(self.study, self.parent_id)
            note = _tracking.write_summary(self.study, self.parent_id, self.space, {
                "storage": redact(self.url),
                "n_trials": self.n_trials,
                "sampler": self.sampler.spec,
                "pruner": self.pruner,
                "fixed_overrides": list(self.space.fixed),
            })
            if note:
                log.info(f"[sweep {self.name}] note: {note}")
        finally:
            parent.end_parent(self.parent_id, status)
            self.lock.close()
        tally = Tally.of(self.study.get_trials(deepcopy=False))
        best = (f"best trial {tally.best.number} val_rmse={tally.best.value:.4f}"
                if tally.best is not None else "no trial completed")
        log.info(f"[sweep {self.name}] {status.lower()}: {tally.finished}/{self.n_trials} trials "
              f"({tally.complete} complete, {tally.pruned} pruned, {tally.failed} failed); {best}; "
              f"MLflow parent run {self.parent_id}")

    def _save_multirun_config(self) -> None:
        sweep_dir = Path(str(self.sweeper.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.sweeper.config, sweep_dir / "multirun.yaml")


class StopSweep(Exception):
    """Too many trials failed: the sweep ends and says why."""
