"""What a study found, defined once for the sweep's progress lines and its MLflow parent run."""

from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial, TrialState


def best_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The complete trial with the lowest value (val_rmse; sweeps minimize), the first on ties."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None
