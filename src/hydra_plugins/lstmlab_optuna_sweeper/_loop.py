"""The sweep loop: take trials under the study lock, launch them, record how they ended.

Where the launcher can start jobs one by one (_jobs.py: `parallel`, submitit), n_jobs trials run
at once and each one's end is told to Optuna the moment it comes, the next trial claimed and
started at once, so no worker waits for another's trial; any other launcher gets batches of
n_jobs, each awaited whole. Both tell a trial's end through `_tell`.

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
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.plural import count
from lstmlab.secrets import mask
from lstmlab.sweep import parent
from lstmlab.sweep.compat import failed_job, job_error, retry_history, trial_id
from lstmlab.sweep.link import TrialLink
from lstmlab.sweep.outages import RetryingStorage, StorageUnavailable

from . import _tracking
from ._confirm import ConfirmStage
from ._jobs import JobPool, batches_because, job_pool
from ._settings import Compose, SweepSettings
from ._storage import StudyLock
from ._tally import Heartbeat, Tally

log = logging.getLogger(__name__)

WAIT_POLL_SECONDS = 5


@dataclass(frozen=True)
class OpenStudy:
    """The study as the loop reaches it: Optuna's objects, the lock workers take turns under, and
    the study's MLflow parent run."""

    study: optuna.Study
    storage: RetryingStorage  # Optuna's RDB storage with heartbeats and retries (_storage.open_storage)
    lock: StudyLock
    parent_id: str


class StudyLoop:
    """Asks trials of the study (as many as the batch size and the budget allow), launches them
    through the Hydra launcher, tells Optuna how each ended, until n_trials have finished."""

    def __init__(self, settings: SweepSettings, opened: OpenStudy, launcher: Any, compose: Compose) -> None:
        self.settings = settings
        self.study = opened.study
        self.storage = opened.storage
        self.lock = opened.lock
        self.parent_id = opened.parent_id
        self.launcher = launcher
        self.compose = compose
        self.name = settings.study_name
        self.job_index = 0
        self.in_flight: dict[int, optuna.Trial] = {}  # by number: asked, not yet told
        self.told: list[int] = []  # numbers of the trials this command told (their runs: the busy share)
        self.waiting_said = False  # "waiting for trials in other workers" said, since the last claim
        self.started = time.monotonic()

    def run(self) -> list[list[JobReturn]]:
        s = self.settings
        pool = job_pool(self.launcher) if s.async_trials and s.batch_size > 1 else None
        log.info(f"[sweep {self.name}] study {self.name!r} in {s.shown_storage}: "
                 f"{Tally.of(self.study.get_trials(deepcopy=False)).finished} of {s.n_trials} "
                 f"trials finished; {s.batch_size} at a time"
                 f"{', the next as soon as one ends' if pool is not None else ''}; MLflow parent run {self.parent_id}")
        if pool is None and s.batch_size > 1:
            log.info(f"[sweep {self.name}] trials run in batches of {s.batch_size}, each awaited whole: "
                     f"{batches_because(self.launcher, s.async_trials)}")
        returns: list[list[JobReturn]] = []
        self.started = time.monotonic()
        verdict = None
        try:
            if pool is None:
                self._run_batches(returns)
            else:
                with pool as jobs:
                    self._run_as_workers_free(jobs, returns)
            if s.confirm.on:  # the study has its n_trials: its best retrained on fresh seeds
                verdict = ConfirmStage(s.confirm, name=self.name, study=self.study, lock=self.lock, space=s.space,
                                       parent_id=self.parent_id, launcher=self.launcher, compose=self.compose,
                                       concurrency=s.batch_size, asynchronous=s.async_trials,
                                       heartbeat_interval=s.heartbeat_interval).run()
        except StopSweep as stop:
            self._give_back_in_flight("stopped")  # asked, not launched: someone else's to run
            self._finish("FAILED")
            raise LstmlabError(str(stop)) from None
        except StorageUnavailable as outage:
            self.in_flight.clear()  # cannot be told: their heartbeats stop, the next command requeues them
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
        return returns

    def _run_batches(self, returns: list[list[JobReturn]]) -> None:
        """Claim a batch, launch it, await it whole, tell each result; until none is left."""
        while True:
            interrupts.check()  # a safe point: between trials
            trials, tally = self._claim(self.settings.batch_size)
            if trials:
                self.waiting_said = False
                returns.append(self._run_batch(trials))
            elif tally.running:
                self._wait_for_others(tally)
            else:
                return

    def _run_as_workers_free(self, pool: JobPool, returns: list[list[JobReturn]]) -> None:
        """Keep n_jobs trials running: as soon as one ends, tell its result, then claim and start
        the next. After Ctrl-C/SIGTERM or a stop (failure rate), start none, let the running
        ones end, tell those that ended on their own; the rest are given back."""
        running: list[tuple[Any, optuna.Trial]] = []  # (job, trial)
        stop: StopSweep | None = None
        with Heartbeat(self.storage, self._running_ids, self.settings.heartbeat_interval):
            while True:
                if interrupts.requested() or stop is not None:
                    if not running:
                        interrupts.check()
                        assert stop is not None
                        raise stop
                elif len(running) < self.settings.batch_size:
                    trials, tally = self._claim(self.settings.batch_size - len(running))
                    try:
                        for trial in trials:
                            overrides = self._job_overrides(trial)
                            if overrides is not None:
                                running.append((pool.submit(overrides, self.job_index), trial))
                                self.job_index += 1
                    except StopSweep as error:
                        stop = error
                        continue
                    if trials:
                        self.waiting_said = False
                    elif not running:
                        if not tally.running:
                            return
                        self._wait_for_others(tally)
                        continue
                if not running:
                    continue
                ended = pool.wait([job for job, _ in running], WAIT_POLL_SECONDS)
                for job, trial in [(j, t) for j, t in running if any(j is e for e in ended)]:
                    running.remove((job, trial))
                    result = job.result()
                    returns.append([result])
                    if interrupts.requested() and result.status != JobStatus.COMPLETED and \
                            not isinstance(job_error(result), optuna.TrialPruned):
                        continue  # stopped by the signal: given back, run again by the next command
                    try:
                        self._tell(trial, result)
                    except StopSweep as error:
                        stop = error

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
            for i in range(wanted):
                self.study.sampler = s.sampler.make(len(trials) + i)
                with warnings.catch_warnings():  # heartbeats are ours here, not optimize()'s
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    trial = self.study.ask(s.space.distributions)
                self.in_flight[trial.number] = trial  # from here on, an interrupt gives it back
                self.storage.record_heartbeat(trial_id(trial))  # stale-able from the start
                asked.append(trial)
        return asked, tally

    def _run_batch(self, trials: list[optuna.Trial]) -> list[JobReturn]:
        """Launch the trials together; record each as it is known to have ended."""
        jobs = [(trial, overrides) for trial in trials
                if (overrides := self._job_overrides(trial)) is not None]
        if not jobs:
            return []
        with Heartbeat(self.storage, self._running_ids, self.settings.heartbeat_interval):
            results = self.launcher.launch([o for _, o in jobs], initial_job_idx=self.job_index)
        self.job_index += len(jobs)
        failures = [self._record(trial, result) for (trial, _), result in zip(jobs, results)]
        self._check_failure_rate([f for f in failures if f is not None])
        return list(results)

    def _tell(self, trial: optuna.Trial, result: JobReturn) -> None:
        """One trial's end, as it comes: told, its line printed, the failure rate checked."""
        failure = self._record(trial, result)
        self._check_failure_rate([failure] if failure else [])

    def _running_ids(self) -> list[int]:
        # From the heartbeat thread while the loop adds and removes trials: a copy (atomic) first.
        return [trial_id(trial) for trial in self.in_flight.copy().values()]

    def _job_overrides(self, trial: optuna.Trial) -> list[str] | None:
        """The trial's job overrides: its sampled values and its link; None (the trial recorded
        as failed) when they do not compose."""
        s = self.settings
        link = TrialLink(study=self.name, storage=s.shown_storage, number=trial.number,
                         parent_run_id=self.parent_id, pruner=s.pruner, storage_retry_s=s.storage_retry_s)
        overrides = [*s.space.overrides(trial.params), link.override()]
        try:
            self.compose(overrides)
        except Exception as error:  # noqa: BLE001 - a composition error fails this trial only
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
        if self.settings.sampler.name in ("grid", "bruteforce"):
            # Their after_trial calls study.stop() once all points ran, which works only inside
            # study.optimize(); this loop stops by counting, so tell through a plain sampler.
            self.study.sampler = optuna.samplers.RandomSampler()
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state,
                        skip_if_finished=True)
        self.in_flight.pop(trial.number, None)
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
        retry = self.storage.get_heartbeat_stale_trial_callback()
        try:
            with self.storage.without_retry():
                for trial in self.in_flight.values():
                    frozen = self.storage.get_trial(trial_id(trial))
                    if frozen.state != TrialState.RUNNING:
                        continue
                    self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                    if retry is not None:
                        retry(self.study, self.storage.get_trial(trial_id(trial)))
                    log.info(f"[sweep {self.name}] {why}: trial {trial.number} is queued again; "
                             "rerun the same command to resume")
        except Exception as error:  # noqa: BLE001 - the next command requeues what is left
            log.info(f"[sweep {self.name}] the storage did not take the running trials back "
                     f"({mask(first_line(error))}); the next sweep queues them again once their "
                     "heartbeats have stopped")
        self.in_flight.clear()

    def _finish(self, status: str, storage_answers: bool = True) -> None:
        """End the parent run as `status`, with the study's summary and closing line when the
        storage answers (after it stopped answering, only the MLflow part)."""
        tally = None
        try:
            if storage_answers:
                tally = self._summarize()
        finally:
            parent.end_parent(self.parent_id, status)
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
            busy = parent.run_seconds(self.parent_id, self.told)
        except Exception:  # noqa: BLE001 - a figure in the closing line is not worth failing it
            return ""
        wall = time.monotonic() - self.started
        return f"; busy share {busy / (self.settings.batch_size * wall):.2f}"

    def _summarize(self) -> Tally:
        """Close orphaned child runs, write the parent's summary; the study's tally."""
        parent.close_orphaned_children(self.study, self.parent_id)
        s = self.settings
        note = _tracking.write_summary(self.study, self.parent_id, s.space, {
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
