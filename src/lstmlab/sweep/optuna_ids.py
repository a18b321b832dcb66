"""Optuna's storage ids, which its public `Trial`/`Study` hide (private attributes), and a running
trial reached by its number: what a trial's job and the sweeper's loop take from Optuna's
internals. tests/sweep/test_compat.py fails here when an upgrade moves them.
"""

from __future__ import annotations

from typing import Any

import optuna


def trial_id(trial: optuna.Trial) -> int:
    """The storage id of a running trial (what heartbeats and `storage.get_trial` take)."""
    return trial._trial_id


def frozen_trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The storage id of a trial as `get_trials` returns it."""
    return trial._trial_id


def study_id(study: optuna.Study) -> int:
    """The storage id of a study (what `storage.get_trial_id_from_study_id_trial_number` takes)."""
    return study._study_id


def running_trial(study: optuna.Study, storage: Any, number: int) -> optuna.Trial:
    """The running trial `number` of `study`, as a `Trial` a job can report to."""
    return optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id(study), number))
