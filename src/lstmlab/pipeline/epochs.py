"""Epochs as run_experiment's callers see them, without Keras: an epoch hook, and an epoch's step.

The sweep prunes trials through epoch hooks and reports their values at these steps; MLflow's
per-epoch curves use the same steps (keras_side.train runs the hooks, keras_side.track logs the
curves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Called after each epoch with (step, logs incl. val_rmse); returning True stops training (and,
# in walk-forward, the folds after it). Plain callables, not Keras callbacks, so callers (the
# sweep) need not import Keras.
EpochHook = Callable[[int, dict[str, Any]], bool]


def epoch_step(fold: int, epochs: int, epoch_index: int) -> int:
    """The step of an epoch: one number for MLflow's per-epoch curves and the sweep's pruner.

    It is the epoch as the console numbers it ("epoch 3/10" is step 3), counted on across
    walk-forward folds: (fold − 1) × trainer.epochs + epoch, fold 1 for a holdout run. So a
    run's folds continue one curve, and at a given step every trial of a study is at the same
    epoch of the same fold, judged on the same val days. (`epoch_index` is Keras' 0-based one.)
    """
    return (fold - 1) * epochs + epoch_index + 1
