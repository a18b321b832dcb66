"""MLflow side of a study: one parent run (tag `optuna_study`) whose children are the trials.

The study itself remembers its parent (study user attribute `mlflow_parent_run_id`), so a
resumed sweep and every worker on the same storage reuse it. At the end of each sweep the parent
carries the best trial's params (under the names its runs use), its value as `best_val_rmse`,
`optimization_results.yaml` and Optuna's plots.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow import MlflowClient
from mlflow.entities import Experiment
from omegaconf import OmegaConf
from optuna.trial import TrialState

from lstmlab.errors import first_line
from lstmlab.sweep.sweeper_needs import close_run, owner_tags

from ._space import SearchSpace
from ._tally import Tally

log = logging.getLogger(__name__)

RESULTS_ARTIFACT = "optimization_results.yaml"
# The best trial's val_rmse on the parent, under a name of its own: a query over runs (grouped by a
# param, say) counts each trial once, not the best one twice.
BEST_METRIC = "best_val_rmse"


PARENT_ATTR = "mlflow_parent_run_id"


def parent_run(study: optuna.Study, experiment: Experiment, storage: str) -> str:
    """The study's parent run in `experiment` (sweeper_needs.use_store's), created on the first sweep;
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


@dataclass(frozen=True)
class StudyParent:
    """The study's MLflow parent run, as the loop ends it (the loop's one door to MLflow)."""

    run_id: str

    def summarize(self, study: optuna.Study, space: SearchSpace, record: Mapping[str, Any]) -> str | None:
        """Close orphaned child runs, write the summary (`write_summary`); its note."""
        close_orphaned_children(study, self.run_id)
        return write_summary(study, self.run_id, space, record)

    def end(self, status: str) -> None:
        MlflowClient().set_terminated(self.run_id, status=status)

    def run_seconds(self, numbers: list[int]) -> float:
        """The summed wall time of the child runs of trials `numbers`."""
        return run_seconds(self.run_id, numbers)


def write_summary(study: optuna.Study, parent_id: str, space: SearchSpace,
                  record: Mapping[str, Any]) -> str | None:
    """Best params, best_val_rmse, trial counts, results file and plots on the parent run.

    Returns a note when the parent's params could not follow a new best trial (MLflow params
    never change once logged: a study extended later keeps its first best trial's params).
    """
    client = MlflowClient()
    trials = study.get_trials(deepcopy=False)
    tally = Tally.of(trials)  # counted as n_trials and the sweep's lines count them
    best = tally.best
    counts = {"complete": tally.complete, "pruned": tally.pruned, "fail": tally.failed}
    for name, count in counts.items():
        client.log_metric(parent_id, f"trials_{name}", count)
    note = None
    if best is not None and best.value is not None:
        client.log_metric(parent_id, BEST_METRIC, best.value)
        client.set_tag(parent_id, "best_trial", str(best.number))
        if "mlflow_run_id" in best.user_attrs:
            client.set_tag(parent_id, "best_run_id", best.user_attrs["mlflow_run_id"])
        params = _best_params(client, best, space)
        logged = client.get_run(parent_id).data.params
        changed = sorted(k for k, v in params.items() if k in logged and logged[k] != v)
        new = [mlflow.entities.Param(k, v) for k, v in params.items() if k not in logged]
        if new:
            client.log_batch(parent_id, params=new)
        if changed:
            note = (f"the parent run's params keep an earlier best trial's values for "
                    f"{', '.join(changed)} (MLflow params cannot change); the best is now trial "
                    f"{best.number}: see its tag best_trial and {RESULTS_ARTIFACT}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = _results(study, trials, best, tally, space, record)
        (folder / RESULTS_ARTIFACT).write_text(OmegaConf.to_yaml(OmegaConf.create(results)))
        _plots(study, folder)
        client.log_artifacts(parent_id, str(folder))
    return note


def _best_params(client: MlflowClient, best: optuna.trial.FrozenTrial, space: SearchSpace) -> dict[str, str]:
    """The params of the swept keys as the best trial's run logged them, so that the parent and
    its trials share columns: `model.units`, and for a swept group (`optimizer=choice(adam,sgd)`)
    each key under it (`optimizer.name`, `optimizer._target_`, ...), never the group's own name."""
    run_id = best.user_attrs.get("mlflow_run_id")
    if run_id is None:  # every trial run here records its run; a trial told from elsewhere may not
        return {}
    logged = client.get_run(run_id).data.params
    names = [d.name for d in space.dimensions.values()]
    return {key: value for key, value in logged.items()
            if any(key == name or key.startswith(f"{name}.") for name in names)}


def _results(study: optuna.Study, trials: list, best: Any, tally: Tally,
             space: SearchSpace, record: Mapping[str, Any]) -> dict[str, Any]:
    def value(t: Any) -> float | None:
        return None if t.value is None else float(t.value)

    return {
        "study": study.study_name,
        "objective": "val_rmse (minimize)",
        **record,
        "search_space": space.record(),
        "trials": {k: v for k, v in tally.counts().items() if v},
        "best_trial": None if best is None else {
            "number": best.number,
            "val_rmse": value(best),
            "params": space.values(best.params),
            "mlflow_run_id": best.user_attrs.get("mlflow_run_id"),
        },
        "all_trials": [
            {"number": t.number, "state": t.state.name, "val_rmse": value(t),
             "params": space.values(t.params),
             "mlflow_run_id": t.user_attrs.get("mlflow_run_id")}
            for t in trials
        ],
    }


def _plots(study: optuna.Study, folder: Path) -> None:
    """Optuna's matplotlib plots; a plot the study cannot have yet (too few trials) is skipped."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as vis

    plots = {
        "optimization_history.png": lambda: vis.plot_optimization_history(study),
        "param_importances.png": lambda: vis.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0)),
        "parallel_coordinate.png": lambda: vis.plot_parallel_coordinate(study),
    }
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    for name, plot in plots.items():
        if complete < (1 if name == "optimization_history.png" else 2):
            continue  # nothing to draw yet: importances and coordinates need two complete trials
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plot()
            figure = plt.gcf()  # the one the plot drew on (it returns one Axes or an array of them)
            figure.set_size_inches(10, 6)
            figure.tight_layout()
            figure.savefig(folder / name, dpi=100)
            plt.close(figure)
        except Exception as error:  # noqa: BLE001 - a missing plot must not fail the sweep
            log.info(f"[sweep {study.study_name}] {name} skipped: {first_line(error)}")
            plt.close("all")
