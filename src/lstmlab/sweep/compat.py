"""Compat: every private or experimental Optuna/Hydra API the sweep relies on, in one place.

Optuna's storages speak in trial ids while its public `Trial`/`Study` hide them, and Hydra's
`JobReturn.return_value` re-raises a failed job's error instead of returning it. When an upgrade
moves one of these, tests/test_compat.py fails here, not somewhere inside a sweep.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus


def trial_id(trial: optuna.Trial) -> int:
    """The storage id of a running trial (what heartbeats and `storage.get_trial` take)."""
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
