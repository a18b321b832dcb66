"""MLflow side of a study: one parent run (tag `optuna_study`) whose children are the trials.

The study itself remembers its parent (study user attribute `mlflow_parent_run_id`), so a
resumed sweep and every worker on the same storage reuse it.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient
from mlflow.entities import Experiment
from optuna.trial import TrialState

from lstmlab.tracking.open import use_store
from lstmlab.tracking.orphans import close_run, owner_tags

log = logging.getLogger(__name__)

PARENT_ATTR = "mlflow_parent_run_id"


def open_experiment(tracking_cfg: Any) -> Experiment:
    """The experiment the study's runs go to, its store opened and checked writable before the
    study is touched (a read-only store: one line, nothing written)."""
    return use_store(tracking_cfg)


def parent_run(study: optuna.Study, experiment: Experiment, storage: str) -> str:
    """The study's parent run in `experiment` (open_experiment's), created on the first sweep;
    marked RUNNING while a sweep runs.

    Call it under the study lock, so that workers starting together create one parent.
    """
    client = MlflowClient()
    experiment_id = experiment.experiment_id
    run_id = study.user_attrs.get(PARENT_ATTR)
    if run_id is not None:
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            run = None  # another MLflow store, or a deleted run: start a new parent here
        if run is not None and run.info.experiment_id == experiment_id and \
                run.info.lifecycle_stage == "active":
            client.update_run(run_id, status="RUNNING")
            for key, value in owner_tags().items():  # this sweep's process runs it now
                client.set_tag(run_id, key, value)
            return str(run_id)
        log.info(f"[sweep {study.study_name}] the study's MLflow parent run {run_id} is not in "
              f"experiment {experiment.name!r} of this store; starting a new parent run")
    run = client.create_run(
        experiment_id,
        run_name=study.study_name,
        tags={"optuna_study": study.study_name, "optuna_storage": storage, **owner_tags()},
    )
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    return str(run.info.run_id)


def end_parent(run_id: str, status: str) -> None:
    MlflowClient().set_terminated(run_id, status=status)


def close_orphaned_children(study: optuna.Study, parent_id: str) -> int:
    """Close the child runs left RUNNING by a dead worker (their trial is over in Optuna) as KILLED,
    as tracking.orphans closes a dead process's run; their number."""
    client = MlflowClient()
    parent = client.get_run(parent_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}' and attributes.status = 'RUNNING'",
    )
    if not runs:
        return 0
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    closed = 0
    for run in runs:
        number = run.data.tags.get("optuna_trial")
        if number is not None and number.isdigit() and states.get(int(number)) not in (
            TrialState.RUNNING, TrialState.WAITING, None
        ):
            close_run(client, run.info.run_id, f"trial {number} ended {states[int(number)].name} in the "
                      "study while its run was RUNNING: its worker had gone")
            closed += 1
    return closed


def run_seconds(parent_id: str, numbers: list[int]) -> float:
    """The summed wall time (start to end) of the child runs of trials `numbers`."""
    client = MlflowClient()
    parent = client.get_run(parent_id)
    wanted = {str(n) for n in numbers}
    runs = client.search_runs([parent.info.experiment_id], max_results=50000,
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
    return float(sum((run.info.end_time - run.info.start_time) / 1000 for run in runs
               if run.data.tags.get("optuna_trial") in wanted and run.info.end_time and run.info.start_time))
