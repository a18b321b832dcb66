"""The confirm stage (hydra.sweeper.confirm.top_k=K, .seeds=N): after the study's n_trials, the K
best distinct configurations (by val_rmse) and the baseline are each trained on N fresh seeds, and
the sweep ends on compare's verdict on their test RMSE rather than on one lucky validation score.

Selection on validation, judgment on test days and seeds the search never saw: the effect, its
interval, Holm over the K and the smallest detectable effect are `lstmlab compare --sweep S
--confirm`'s own (lstmlab.comparison), so the parent run's verdict equals the command's.

Each run is a plain job of the sweep's launcher (lstmlab.sweep.confirm_job: nested under the
parent, tagged confirm.trial / confirm.baseline). Which ran is read back from MLflow, so a restart
trains only what did not finish; one worker at a time trains them (the study's `confirm_owner`,
kept alive while it works), the others wait for it and then judge the same runs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from mlflow import MlflowClient
from optuna.trial import TrialState

from lstmlab import interrupts
from lstmlab.comparison.compare import compare
from lstmlab.comparison.render import render_text
from lstmlab.comparison.verdict import verdict_head
from lstmlab.errors import first_line
from lstmlab.names import CONFIRM_BASELINE_TAG, CONFIRM_TRIAL_TAG
from lstmlab.plural import count
from lstmlab.sweep.link import ConfirmLink
from lstmlab.sweep.outages import STORAGE_ERRORS

from ._jobs import JobPool, job_error, run_jobs
from ._settings import ConfirmSettings

log = logging.getLogger(__name__)

OWNER_ATTR = "confirm_owner"  # the study's: {"worker": host:pid, "beat": unix time} while one trains
POLL_S = 5.0
VERDICT_TAGS = ("best_trial", "verdict", "effect", "effect_low", "effect_high", "mde", "seeds")


@dataclass(frozen=True)
class ConfirmJob:
    link: ConfirmLink
    overrides: list[str]


@dataclass(frozen=True)
class Plan:
    trials: list[int]  # the trials retrained, best val_rmse first
    jobs: list[ConfirmJob]
    said: list[str]  # what the plan had to decide, in words


class ConfirmStage:
    """Plan, train what is missing, judge: `run` after the study's trials have finished."""

    def __init__(self, confirm: ConfirmSettings, *, name: str, study: optuna.Study, lock: Any,
                 space: Any, parent_id: str, pool: JobPool, concurrency: int, first_idx: int,
                 heartbeat_interval: int) -> None:
        self.confirm, self.name, self.study, self.lock, self.space = confirm, name, study, lock, space
        self.parent_id, self.pool, self.concurrency, self.first_idx = parent_id, pool, concurrency, first_idx
        self.grace_s = 3 * heartbeat_interval
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def say(self, text: str) -> None:
        log.info(f"[sweep {self.name}] {text}")

    def run(self) -> str | None:
        """Train the missing confirm runs and judge them; the verdict's line (None: nothing to judge)."""
        plan = self.plan()
        for line in plan.said:
            self.say(line)
        if not plan.jobs:
            return None
        k, n = len(plan.trials), len(self.confirm.seeds)
        self.say(f"confirm: {count(k, 'trial')} × {count(n, 'seed')} + baseline × {n} = "
                 f"{count(len(plan.jobs), 'run')} on seeds {', '.join(map(str, self.confirm.seeds))} "
                 f"(trials {', '.join(map(str, plan.trials))}, by val_rmse)")
        self.train(plan)
        return self.judge(plan)

    def plan(self) -> Plan:
        """The K best distinct configurations of the study's complete trials (a trial sampling
        what a better one sampled adds nothing) and the baseline, each on every fresh seed."""
        complete = sorted(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)),
                          key=lambda t: (t.value, t.number))
        trials: list[optuna.trial.FrozenTrial] = []
        seen: set[str] = set()
        for trial in complete:
            key = repr(sorted(self.space.values(trial.params).items()))
            if key not in seen and len(trials) < self.confirm.top_k:
                trials.append(trial)
            seen.add(key)
        said = []
        if len(trials) < self.confirm.top_k:
            said.append(f"confirm: hydra.sweeper.confirm.top_k={self.confirm.top_k} but the study has "
                        f"{count(len(trials), 'distinct complete configuration')}: confirming "
                        f"{'those' if trials else 'none'}")
        if not trials:
            return Plan([], [], said)
        jobs = []
        for number, overrides in [*((t.number, self.space.overrides(t.params)) for t in trials),
                                   (None, [*self.space.fixed, *self.confirm.baseline])]:
            for seed in self.confirm.seeds:
                link = ConfirmLink(self.parent_id, number, seed)
                jobs.append(ConfirmJob(link, [*overrides, f"trainer.seed={seed}", link.override()]))
        return Plan([t.number for t in trials], jobs, said)

    def finished(self) -> set[tuple[int | None, int]]:
        """(trial or None for the baseline, seed) of the parent's confirm runs that FINISHED."""
        client = MlflowClient()
        experiment_id = client.get_run(self.parent_id).info.experiment_id
        runs = client.search_runs([experiment_id], max_results=50000, filter_string=(
            f"tags.`mlflow.parentRunId` = '{self.parent_id}' AND attributes.status = 'FINISHED'"))
        done: set[tuple[int | None, int]] = set()
        for run in runs:
            tags, seed = run.data.tags, run.data.params.get("trainer.seed", "")
            if not seed.lstrip("-").isdigit():
                continue
            if tags.get(CONFIRM_BASELINE_TAG) == "true":
                done.add((None, int(seed)))
            elif str(tags.get(CONFIRM_TRIAL_TAG, "")).isdigit():
                done.add((int(tags[CONFIRM_TRIAL_TAG]), int(seed)))
        return done

    def missing(self, plan: Plan) -> list[ConfirmJob]:
        done = self.finished()
        return [job for job in plan.jobs if (job.link.trial, job.link.seed) not in done]

    def train(self, plan: Plan) -> None:
        """Train the missing runs as the only worker doing so: what is missing is read once the
        stage is taken (another worker may have trained it meanwhile)."""
        while not self._take_ownership():
            self._wait_for_owner()
        try:
            todo = self.missing(plan)
            if not todo:
                self.say(f"confirm: all {count(len(plan.jobs), 'run')} have finished")
                return
            trained = len(plan.jobs) - len(todo)
            if trained:
                self.say(f"confirm: {trained} of {count(len(plan.jobs), 'run')} finished before: "
                         f"training the other {len(todo)}")
            with self._keeping_ownership():
                self._run_jobs(todo)
        finally:
            self._release_ownership()
        interrupts.check()
        failed = len(self.missing(plan))
        if failed:
            self.say(f"confirm: {failed} of {count(len(plan.jobs), 'run')} did not finish: judged as failed "
                     "seeds (the same command trains them again)")

    def _run_jobs(self, todo: list[ConfirmJob]) -> None:
        """Through the sweep's own pool, `concurrency` at a time, a line as each ends; after
        Ctrl-C/SIGTERM none starts and the running ones end KILLED (run_jobs raises then)."""
        started, ended = time.monotonic(), 0

        def said(i: int, result: JobReturn) -> None:
            nonlocal ended
            ended += 1
            self._progress(todo[i], result, ended, len(todo), time.monotonic() - started)

        run_jobs(self.pool, [job.overrides for job in todo], self.concurrency, self.first_idx, said)

    def _progress(self, job: ConfirmJob, result: JobReturn, ended: int, total: int, elapsed: float) -> None:
        what = "baseline" if job.link.trial is None else f"trial {job.link.trial}"
        if result.status == JobStatus.COMPLETED:
            value = result.return_value
            state = f"finished (val_rmse {value:.4g})" if isinstance(value, float) else "finished"
        else:
            error = job_error(result)
            state = f"failed ({first_line(error) if error is not None else result.status.name})"
        left = total - ended
        eta = f" · ETA {_duration(elapsed / ended * left)}" if left else ""
        self.say(f"confirm {ended}/{total}: {what} seed {job.link.seed} {state}{eta}")

    # -- one worker trains: the study's confirm_owner, renewed while it works ------------------

    def _owner(self) -> dict[str, Any] | None:
        owner = self.study.user_attrs.get(OWNER_ATTR)  # read from the storage on every call
        return owner if isinstance(owner, dict) else None

    def _take_ownership(self) -> bool:
        with self.lock:
            owner = self._owner()
            if owner and owner.get("worker") != self.worker and time.time() - float(owner.get("beat", 0)) < self.grace_s:
                return False
            self.study.set_user_attr(OWNER_ATTR, {"worker": self.worker, "beat": time.time()})
            return True

    @contextmanager
    def _keeping_ownership(self) -> Iterator[None]:
        """Renew the stage's owner record while the jobs run (a batch launcher blocks this thread
        for a whole batch): a thread, as the trials' heartbeats are kept."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(min(POLL_S, self.grace_s / 3)):
                try:
                    self.study.set_user_attr(OWNER_ATTR, {"worker": self.worker, "beat": time.time()})
                except STORAGE_ERRORS:  # a missed beat is retried; three in a row hand the stage over
                    continue

        thread = threading.Thread(target=beat, name="lstmlab-confirm-owner", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _release_ownership(self) -> None:
        try:
            with self.lock:
                owner = self._owner()
                if owner and owner.get("worker") == self.worker:
                    self.study.set_user_attr(OWNER_ATTR, None)
        except STORAGE_ERRORS as error:  # an unreleased claim goes stale by itself
            self.say(f"confirm: could not release the confirm stage ({first_line(error)}); "
                     f"another worker takes it over after {self.grace_s} s")

    def _wait_for_owner(self) -> None:
        self.say("confirm: another worker trains the confirm runs; waiting for it (Ctrl-C stops waiting)")
        while True:
            interrupts.check()
            owner = self._owner()
            if not owner or time.time() - float(owner.get("beat", 0)) >= self.grace_s:
                return
            time.sleep(POLL_S)

    # -- the verdict ------------------------------------------------------------------------

    def judge(self, plan: Plan) -> str:
        """compare --sweep PARENT --confirm, its verdict on the parent run, the sweep's last line."""
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run read: noise
        client = MlflowClient()
        experiment = client.get_experiment(client.get_run(self.parent_id).info.experiment_id).name
        comparison = compare(experiment=experiment, sweep=self.parent_id, confirm=True)
        groups = comparison.groups
        trials = groups[groups["group"].str.startswith("trial ")].sort_values("rmse_change", na_position="last")
        if trials.empty:
            return "confirm: no trial's confirm run finished: no verdict"
        better = trials[trials["verdict"].map(verdict_head) == "better"]
        best = (better if not better.empty else trials).iloc[0]  # one trial for the tags and the line
        number = int(str(best["group"]).split()[1])
        head = verdict_head(str(best["verdict"]))
        seeds = len(self.confirm.seeds)
        effect = _interval(best["rmse_change"], best["rmse_change_low"], best["rmse_change_high"])
        tags = dict(zip(VERDICT_TAGS, (str(number), head, f"{best['rmse_change']:.6g}", f"{best['rmse_change_low']:.6g}",
                                       f"{best['rmse_change_high']:.6g}", f"{best['mde']:.6g}", str(seeds))))
        for key, value in tags.items():
            client.set_tag(self.parent_id, f"confirm.{key}", value)
        with TemporaryDirectory() as folder:
            (Path(folder) / "confirm_report.txt").write_text(render_text(comparison) + "\n")
            groups.to_csv(Path(folder) / "confirm_groups.csv", index=False)
            client.log_artifacts(self.parent_id, folder)
        if head == "better":
            line = f"trial {number} confirmed: test RMSE {effect} vs the baseline over {seeds} seeds (better)"
        else:
            line = (f"no trial beats the baseline beyond seed noise (smallest detectable effect "
                    f"{best['mde']:.1%}); closest: trial {number}, test RMSE {effect} ({head})")
        confirmed = [int(str(g).split()[1]) for g in trials["group"]]
        order = [t for t in plan.trials if t in confirmed]
        if confirmed != order:
            line += (f"; on fresh seeds the order is trial {', '.join(map(str, confirmed))} "
                     f"(the sweep's: {', '.join(map(str, order))})")
        return line


def _interval(change: float, low: float, high: float) -> str:
    """'−3.1 % [−5.0, −1.2]'."""
    def pct(value: float) -> str:
        return "—" if value != value else f"{100 * value:+.1f}".replace("-", "−")
    return f"{pct(change)} % [{pct(low)}, {pct(high)}]"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(1, round(seconds))} s"
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"
