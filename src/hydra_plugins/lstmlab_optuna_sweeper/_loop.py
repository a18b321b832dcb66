"""The sweep loop: claim trials under the study lock, submit them to the job pool, wait, tell
Optuna how each ended; one loop for every launcher (_jobs.keep_busy over _jobs.job_pool).

Where the launcher can start jobs one by one (`parallel`, submitit), n_jobs trials run at once
and each one's end is told the moment it comes, the next trial claimed and started at once, so
no worker waits for another's trial; any other launcher's pool runs them in batches of n_jobs,
each awaited whole.

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
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.plural import count
from lstmlab.secrets import mask
from lstmlab.sweep.link import TrialLink
from lstmlab.sweep.optuna_ids import trial_id
from lstmlab.sweep.outages import STORAGE_ERRORS, RetryingStorage, StorageUnavailable

from ._confirm import ConfirmStage
from ._jobs import WAIT_POLL_SECONDS, JobPool, batches_because, failed_job, job_error, job_pool, keep_busy
from ._settings import Compose, SweepSettings
from ._space import COMPOSE_ERRORS
from ._storage import StudyLock
from ._tally import Heartbeat, Tally, retry_history
from ._tracking import StudyParent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenStudy:
    """The study as the loop reaches it: Optuna's objects, the lock workers take turns under, and
    the study's MLflow parent run (a stand-in in tests of the loop)."""

    study: optuna.Study
    storage: RetryingStorage  # Optuna's RDB storage with heartbeats and retries (_storage.open_storage)
    lock: StudyLock
    parent: StudyParent


class StudyLoop:
    """Claims trials of the study (as many as `concurrency` and the budget allow), runs them
    through the launcher's job pool, tells Optuna how each ended, until n_trials have finished."""

    def __init__(self, settings: SweepSettings, opened: OpenStudy, launcher: Any, compose: Compose) -> None:
        self.settings = settings
        self.study = opened.study
        self.storage = opened.storage
        self.lock = opened.lock
        self.parent = opened.parent
        self.parent_id = opened.parent.run_id
        self.launcher = launcher
        self.compose = compose
        self.name = settings.study_name
        self.job_index = 0
        # Asked, not yet told, by number: the heartbeat thread reads them while the loop changes them.
        self._in_flight: dict[int, optuna.Trial] = {}
        self._in_flight_lock = threading.Lock()
        self.told: list[int] = []  # numbers of the trials this command told (their runs: the busy share)
        self.returns: list[list[JobReturn]] = []  # each ended job's, for Hydra
        self.stop: StopSweep | None = None  # set once too many trials failed: nothing more is claimed
        self.waiting_said = False  # "waiting for trials in other workers" said, since the last claim
        self.started = time.monotonic()

    def run(self) -> list[list[JobReturn]]:
        s = self.settings
        why = batches_because(self.launcher, s.async_trials) if s.concurrency > 1 else None
        log.info(f"[sweep {self.name}] study {self.name!r} in {s.shown_storage}: "
                 f"{Tally.of(self.study.get_trials(deepcopy=False)).finished} of {s.n_trials} "
                 f"trials finished; {s.concurrency} at a time"
                 f"{', the next as soon as one ends' if s.concurrency > 1 and why is None else ''}; "
                 f"MLflow parent run {self.parent_id}")
        if why is not None:
            log.info(f"[sweep {self.name}] trials run in batches of {s.concurrency}, each awaited whole: {why}")
        self.started = time.monotonic()
        verdict = None
        try:
            with job_pool(self.launcher, one_by_one=s.concurrency > 1 and why is None) as pool:
                self.run_trials(pool)
                if s.confirm.on:  # the study has its n_trials: its best retrained on fresh seeds, same pool
                    verdict = ConfirmStage(s.confirm, name=self.name, study=self.study, lock=self.lock,
                                           space=s.space, parent_id=self.parent_id, pool=pool,
                                           concurrency=s.concurrency, first_idx=self.job_index,
                                           heartbeat_interval=s.heartbeat_interval).run()
        except StopSweep as stop:
            self._give_back_in_flight("stopped")  # asked, not launched: someone else's to run
            self._finish("FAILED")
            raise LstmlabError(str(stop)) from None
        except StorageUnavailable as outage:
            self._take_in_flight()  # cannot be told: their heartbeats stop, the next command requeues them
            self._finish("FAILED", storage_answers=False)
            raise LstmlabError(f"{outage}; stopped the sweep: rerun the same command once the database "
                               "answers to resume it (trials that were running are queued again then)") from None
        except BaseException as error:
            self._give_back_in_flight("interrupted")
            self._finish("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
            raise
        self._finish("FINISHED")
        if verdict is not None:
            log.info(f"[sweep {self.name}] {verdict}")  # the sweep's answer: its last line
        return self.returns

    def run_trials(self, pool: JobPool) -> None:
        """claim → submit → wait → tell through `pool` until no trial is left to run, our running
        trials' heartbeats recorded meanwhile; StopSweep once too many failed (after the running
        ones ended), the interrupt after Ctrl-C/SIGTERM (the running ones given back by `run`)."""
        with Heartbeat(self.storage, self._running_ids, self.settings.heartbeat_interval):
            self.job_index = keep_busy(pool, self.settings.concurrency, self.job_index,
                                       self._take, self._ended)
        if self.stop is not None:
            raise self.stop

    def _take(self, free: int, running: int) -> list[tuple[list[str], optuna.Trial]]:
        """Up to `free` trials to start, with their job overrides; [] when none is left to claim.
        While other workers' trials run and ours do not, wait for them: a trial whose worker
        died is claimed again once it is failed."""
        while self.stop is None and not interrupts.requested():
            trials, tally = self._claim(free)
            try:
                jobs = [(overrides, trial) for trial in trials
                        if (overrides := self._job_overrides(trial)) is not None]
            except StopSweep as stop:  # a trial's config failed once too often: claimed ones go back
                self.stop = stop
                return []
            if trials:
                self.waiting_said = False
            if jobs or running or (not trials and not tally.running):
                return jobs
            if not trials:
                self._wait_for_others(tally)
        return []

    def _ended(self, trial: optuna.Trial, result: JobReturn) -> None:
        self.returns.append([result])
        if interrupts.requested() and result.status != JobStatus.COMPLETED and \
                not isinstance(job_error(result), optuna.TrialPruned):
            return  # stopped by the signal: given back, run again by the next command
        try:
            self._tell(trial, result)
        except StopSweep as stop:
            self.stop = stop

    def _wait_for_others(self, tally: Tally) -> None:
        """Nothing to claim while other workers' trials run: one line, then look again shortly."""
        if not self.waiting_said:
            log.info(f"[sweep {self.name}] waiting for {tally.running} trial(s) running "
                     f"in other workers (one silent for {self.storage.grace_period} s is "
                     "failed and queued again; Ctrl-C stops waiting)")
            self.waiting_said = True
        time.sleep(min(WAIT_POLL_SECONDS, self.settings.heartbeat_interval))

    def _claim(self, slots: int) -> tuple[list[optuna.Trial], Tally]:
        """Under the study lock: fail stale trials, count, and ask up to `slots` trials, as many
        as the budget allows."""
        s = self.settings
        with self.lock:
            optuna.storages.fail_stale_trials(self.study)
            trials = self.study.get_trials(deepcopy=False)
            tally = Tally.of(trials)
            wanted = min(slots, max(0, s.n_trials - tally.used) + tally.waiting)
            asked = []
            for _ in range(wanted):
                with warnings.catch_warnings():  # heartbeats are ours here, not optimize()'s
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    trial = self.study.ask(s.space.distributions)  # sampled by trial number (_sampling)
                with self._in_flight_lock:  # from here on, an interrupt gives it back
                    self._in_flight[trial.number] = trial
                self.storage.record_heartbeat(trial_id(trial))  # stale-able from the start
                asked.append(trial)
        return asked, tally

    def _tell(self, trial: optuna.Trial, result: JobReturn) -> None:
        """One trial's end, as it comes: told, its line printed, the failure rate checked."""
        failure = self._record(trial, result)
        self._check_failure_rate([failure] if failure else [])

    def _running_ids(self) -> list[int]:
        """Our trials' storage ids, for the heartbeat thread."""
        with self._in_flight_lock:
            return [trial_id(trial) for trial in self._in_flight.values()]

    def _take_in_flight(self) -> list[optuna.Trial]:
        """The trials asked and not yet told, no longer ours to beat for."""
        with self._in_flight_lock:
            trials = list(self._in_flight.values())
            self._in_flight.clear()
        return trials

    def _job_overrides(self, trial: optuna.Trial) -> list[str] | None:
        """The trial's job overrides: its sampled values and its link; None (the trial recorded
        as failed) when they do not compose."""
        s = self.settings
        link = TrialLink(study=self.name, storage=s.shown_storage, number=trial.number,
                         parent_run_id=self.parent_id, pruner=s.pruner, storage_retry_s=s.storage_retry_s)
        overrides = [*s.space.overrides(trial.params), link.override()]
        try:
            self.compose(overrides)
        except COMPOSE_ERRORS as error:  # fails this trial only
            self._tell(trial, failed_job(overrides, error))
            return None
        return overrides

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
            error = job_error(result) or RuntimeError(f"the job ended {result.status.name}")
            detail = first_line(error, with_type=not isinstance(error, optuna.TrialPruned))
            if isinstance(error, optuna.TrialPruned):
                state = TrialState.PRUNED
            else:
                trial.set_user_attr("error", detail[:1000])
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state,
                        skip_if_finished=True)
        with self._in_flight_lock:
            self._in_flight.pop(trial.number, None)
        self.told.append(trial.number)
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
        rate, n_trials = self.settings.max_failure_rate, self.settings.n_trials
        if failed > rate * n_trials:
            raise StopSweep(
                f"stopped the sweep: {failed} of {count(n_trials, 'trial')} failed, more than "
                f"hydra.sweeper.max_failure_rate={rate} allows (last: "
                f"{failures[-1]}); fix the cause or raise the rate, then rerun the same command "
                "to resume"
            )

    def _progress(self, number: int | str, state: TrialState, value: Any, detail: str,
                  tally: Tally) -> None:
        what = f"val_rmse={value:.4f}" if state == TrialState.COMPLETE else f"({detail})"
        best = (f"best: trial {tally.best.number} val_rmse={tally.best.value:.4f}"
                if tally.best is not None else "best: none yet")
        log.info(f"[sweep {self.name}] trial {number} {state.name} {what} | {best} | "
                 f"{tally.finished}/{self.settings.n_trials} finished")

    def _give_back_in_flight(self, why: str) -> None:
        """Interrupted (Ctrl-C, an error) or stopped: fail our running trials and queue them again,
        at once: when the storage does not answer, their heartbeats stop and the next command does it."""
        trials = self._take_in_flight()
        retry = self.storage.get_heartbeat_stale_trial_callback()
        try:
            with self.storage.without_retry():
                for trial in trials:
                    frozen = self.storage.get_trial(trial_id(trial))
                    if frozen.state != TrialState.RUNNING:
                        continue
                    self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    if retry is not None:
                        retry(self.study, self.storage.get_trial(trial_id(trial)))
                    log.info(f"[sweep {self.name}] {why}: trial {trial.number} is queued again; "
                             "rerun the same command to resume")
        except STORAGE_ERRORS as error:  # the next command requeues what is left
            log.info(f"[sweep {self.name}] the storage did not take the running trials back "
                     f"({mask(first_line(error))}); the next sweep queues them again once their "
                     "heartbeats have stopped")

    def _finish(self, status: str, storage_answers: bool = True) -> None:
        """End the parent run as `status`, with the study's summary and closing line when the
        storage answers (after it stopped answering, only the MLflow part)."""
        tally = None
        try:
            if storage_answers:
                tally = self._summarize()
        finally:
            self.parent.end(status)
            self.lock.close()
        if tally is None:
            return
        best = (f"best trial {tally.best.number} val_rmse={tally.best.value:.4f}"
                if tally.best is not None else "no trial completed")
        log.info(f"[sweep {self.name}] {status.lower()}: {tally.finished}/{self.settings.n_trials} "
                 f"trials ({tally.complete} complete, {tally.pruned} pruned, {tally.failed} failed); "
                 f"{best}{self._busy_share()}; MLflow parent run {self.parent_id}")

    def _busy_share(self) -> str:
        """"; busy share 0.93": the trials' run time this command (their MLflow runs, start to end)
        over n_jobs × its wall time; how much of the time its workers trained. "" when it ran none."""
        if not self.told:
            return ""
        try:
            busy = self.parent.run_seconds(self.told)
        except Exception:  # noqa: BLE001 - a figure in the closing line is not worth failing it
            return ""
        wall = time.monotonic() - self.started
        return f"; busy share {busy / (self.settings.concurrency * wall):.2f}"

    def _summarize(self) -> Tally:
        """Close orphaned child runs, write the parent's summary; the study's tally."""
        s = self.settings
        note = self.parent.summarize(self.study, s.space, {
            "storage": s.shown_storage,
            "n_trials": s.n_trials,
            "sampler": s.sampler.spec,
            "pruner": s.pruner,
            "fixed_overrides": list(s.space.fixed),
        })
        if note:
            log.info(f"[sweep {self.name}] note: {note}")
        return Tally.of(self.study.get_trials(deepcopy=False))


class StopSweep(Exception):
    """Too many trials failed: the sweep ends and says why."""
