"""Reuse: with `tracking.skip_finished=true`, a job whose configuration already has a FINISHED run
on the same data is not trained again: its recorded result is the job's result.

A long multirun (every variant × seeds × folds: hours) that is interrupted can then be started
again with the same command and trains only what is missing. The identity is what compare's
seed groups go by (pipeline.params.configuring: every param but how the run was recorded, the
seed included here) plus the data fingerprint (tag data_sha256). The Keras backend is part of the
configuration (`trainer.backend`): a run on another backend computed other numbers and is not
reused; the job says so. Sweeps never reuse (the study resumes itself; sweep.trial).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import DATA_TAG, FINAL_METRICS, REPORT_TAG
from lstmlab.pipeline.params import configuring, run_params
from lstmlab.secrets import mask
from lstmlab.tracking.open import open_store

if TYPE_CHECKING:  # MLflow itself is imported when the store is asked
    from mlflow.entities import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finished:
    """A FINISHED run of the job's configuration on the job's data."""

    run_id: str
    run_name: str
    metrics: dict[str, float]


def finished_run(cfg: DictConfig, data_sha256: str, say_why_not: bool = True) -> Finished | None:
    """The latest FINISHED run in `tracking.experiment` with this configuration and data, or None.

    Says in one line why a run of the same configuration on another backend is not reused (once:
    `say_why_not=False` when a job looks again). Reads the store only (an experiment that does
    not exist yet holds nothing to reuse)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        open_store(cfg.tracking.uri)
        experiment = mlflow.get_experiment_by_name(cfg.tracking.experiment)
        if experiment is None:
            return None
        candidates = mlflow.MlflowClient().search_runs(
            [experiment.experiment_id],
            filter_string=f"attributes.status = 'FINISHED' AND tags.{DATA_TAG} = '{data_sha256}' "
                          f"AND params.`trainer.seed` = '{cfg.trainer.seed}'",
            order_by=["attributes.start_time DESC"],
            max_results=1000,
        )
    except MlflowException as error:
        raise LstmlabError(f"tracking.skip_finished=true needs to read the store "
                           f"{mask(mlflow.get_tracking_uri())} and cannot: {first_line(error)}") from None
    wanted = configuring(run_params(cfg))
    other_backend = None
    for run in candidates:
        if not _is_trained_result(run):
            continue
        recorded = configuring(run.data.params)
        if recorded == wanted:
            metrics = {name: run.data.metrics[name] for name in FINAL_METRICS if name in run.data.metrics}
            return Finished(run.info.run_id, run.info.run_name, metrics)
        if other_backend is None and _differ_only_in_backend(recorded, wanted):
            other_backend = run
    if other_backend is not None and say_why_not:
        log.info("not reused: run %s has this configuration on these data, trained on %s; this job trains "
                 "on %s (the backends compute differently; trainer.backend=%s would reuse it)",
                 other_backend.info.run_id, other_backend.data.params.get("trainer.backend"),
                 cfg.trainer.backend, other_backend.data.params.get("trainer.backend"))
    return None


def _is_trained_result(run: Run) -> bool:
    """A run that trained to the end: final metrics, not pruned, not a report or a sweep's parent."""
    tags = run.data.tags
    return ("val_rmse" in run.data.metrics and "test_rmse" in run.data.metrics
            and tags.get("state") != "pruned" and tags.get(REPORT_TAG) != "true"
            and not ("optuna_study" in tags and "optuna_trial" not in tags))


def _differ_only_in_backend(recorded: dict[str, str], wanted: dict[str, str]) -> bool:
    key = "trainer.backend"
    return recorded.get(key) != wanted.get(key) and \
        {k: v for k, v in recorded.items() if k != key} == {k: v for k, v in wanted.items() if k != key}
