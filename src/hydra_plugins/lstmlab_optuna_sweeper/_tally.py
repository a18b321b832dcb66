"""Counting a study's trials the way n_trials counts them, and keeping running trials alive
(heartbeats) while their batch runs."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lstmlab.sweep.outages import STORAGE_ERRORS


def retry_history(trial: FrozenTrial) -> list[int]:
    """Numbers of the trials this one retries, oldest first ([] for an original trial); Optuna's
    call is experimental (tests/sweep/test_compat.py checks it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(optuna.storages.RetryFailedTrialCallback.retry_history(trial))


def best_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the lowest value (val_rmse; sweeps minimize), the first on ties:
    the best the sweep's lines and its MLflow parent run name."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


@dataclass(frozen=True)
class Tally:
    """The study's trials, counted the way n_trials counts them."""

    complete: int
    pruned: int
    failed: int  # FAIL trials that were not queued again
    running: int
    waiting: int
    requeued: int  # FAIL trials queued again (a dead worker's, an interrupted one): their rerun counts
    best: FrozenTrial | None

    @classmethod
    def of(cls, trials: Iterable[FrozenTrial]) -> Tally:
        trials = list(trials)
        replaced = {n for t in trials for n in retry_history(t)}
        count = {state: 0 for state in TrialState}
        requeued = 0
        for t in trials:
            if t.state == TrialState.FAIL and t.number in replaced:
                requeued += 1
            else:
                count[t.state] += 1
        return cls(
            complete=count[TrialState.COMPLETE],
            pruned=count[TrialState.PRUNED],
            failed=count[TrialState.FAIL],
            running=count[TrialState.RUNNING],
            waiting=count[TrialState.WAITING],
            requeued=requeued,
            best=best_trial(trials),
        )

    def counts(self) -> dict[str, int]:
        """Each count by name, for records (`optimization_results.yaml`)."""
        return {"complete": self.complete, "pruned": self.pruned, "fail": self.failed,
                "running": self.running, "waiting": self.waiting, "fail_requeued": self.requeued}

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    @property
    def used(self) -> int:
        return self.finished + self.running + self.waiting


class Heartbeat:
    """Records that our running trials are alive, every interval, while they run; `trial_ids`
    says which they are at each beat."""

    def __init__(self, storage: Any, trial_ids: Callable[[], list[int]], interval: int) -> None:
        self.storage = storage
        self.trial_ids = trial_ids
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True, name="optuna-heartbeat")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        with self.storage.without_retry():  # a missed beat is retried next interval
            while not self.stop.wait(self.interval):
                for beating in self.trial_ids():
                    try:
                        self.storage.record_heartbeat(beating)
                    except STORAGE_ERRORS:  # a missed beat is retried next interval
                        pass
