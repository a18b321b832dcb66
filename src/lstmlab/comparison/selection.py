"""Selecting runs: the ended runs of an experiment, one sweep or a filter, and the baseline.

Finished runs are compared; runs that FAILED or were KILLED, and finished runs whose test RMSE is
not a finite number, count as failed seeds of their configuration (column `failed`): a setting
that diverges on some seeds is judged with those seeds, not on its survivors alone. Sweep
parents, pruned trials and compare's report runs are left out; within a seed group, runs
repeating a seed (reruns, retraining) count once, the latest that finished (else the latest): a
repeat is the same sample again, not a new one.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab.comparison.seeds import LARGEST, TESTED_METRIC
from lstmlab.comparison.store_table import experiment_runs
from lstmlab.errors import LstmlabError
from lstmlab.names import REPORT_TAG

ENDED = ("FINISHED", "FAILED", "KILLED")  # MLflow's filter cannot list statuses: filtered here


def search_ended(experiment_id: str, filter_string: str | None) -> pd.DataFrame:
    """The experiment's runs that ended (finished, failed or killed), narrowed by `filter_string`
    (MLflow's search grammar; without one, the store's tables are read directly: store_table)."""
    if not filter_string:
        runs = experiment_runs(experiment_id)
        return runs[runs["status"].isin(ENDED)].reset_index(drop=True) if "status" in runs else runs
    try:
        runs = mlflow.search_runs(experiment_ids=[experiment_id],
                                  filter_string=f"attributes.status != 'RUNNING' AND {filter_string}")
    except MlflowException as error:
        raise LstmlabError(f"bad filter {filter_string!r}: {error.message}") from None
    return runs[runs["status"].isin(ENDED)].reset_index(drop=True) if "status" in runs else runs


def comparable(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The runs a comparison reads, with a column `failed`: finished runs with the metric (failed
    when their test RMSE is not finite) and runs that FAILED or were KILLED after recording their
    seed; without sweep parents (their metrics summarize children), pruned trials or compare's
    own report runs."""
    column = f"metrics.{metric}"
    if column not in runs:
        return runs.iloc[0:0].assign(failed=pd.Series(dtype=bool))
    status = runs["status"] if "status" in runs else pd.Series("FINISHED", index=runs.index)
    finished = status.eq("FINISHED") & runs[column].notna()
    seeded = runs["params.trainer.seed"].notna() if "params.trainer.seed" in runs else pd.Series(False, index=runs.index)
    stopped = status.isin(("FAILED", "KILLED")) & seeded
    keep = finished | stopped
    if f"tags.{REPORT_TAG}" in runs:
        keep &= runs[f"tags.{REPORT_TAG}"].ne("true")
    if "tags.mlflow.parentRunId" in runs:
        keep &= ~runs["run_id"].isin(set(runs["tags.mlflow.parentRunId"].dropna()))
    if "tags.optuna_study" in runs:  # a study's parent run, even before any trial finished
        trial = runs["tags.optuna_trial"].notna() if "tags.optuna_trial" in runs else False
        keep &= runs["tags.optuna_study"].isna() | trial
    if "tags.state" in runs:
        keep &= runs["tags.state"].ne("pruned")
    tested = pd.to_numeric(runs.get(f"metrics.{TESTED_METRIC}", pd.Series(float("nan"), index=runs.index)),
                           errors="coerce")
    failed = stopped | ~(tested.abs() < LARGEST)  # NaN and ±inf (MLflow stores it as the largest float) are no result
    return runs[keep].assign(failed=failed[keep]).reset_index(drop=True)


def sweep_parent(experiment_id: str, sweep: str) -> str:
    """`--sweep` is the parent run's id, or a study name (the parent's `optuna_study` tag)."""
    try:
        return mlflow.get_run(sweep).info.run_id
    except MlflowException:
        pass
    parents = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.optuna_study = '{sweep}'",
        order_by=["attributes.start_time DESC"],
    )
    if "tags.mlflow.parentRunId" in parents:
        parents = parents[parents["tags.mlflow.parentRunId"].isna()]
    if parents.empty:
        raise LstmlabError(f"--sweep {sweep!r} is neither a run id nor a study name (tag optuna_study) in this experiment")
    return str(parents.iloc[0]["run_id"])


def one_run_per_seed(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One run per configuration and seed: the latest that finished, else the latest; and how
    many were left out."""
    seed = runs["params.trainer.seed"] if "params.trainer.seed" in runs else runs["run_id"]
    latest = runs.assign(_seed=seed.fillna(runs["run_id"])).sort_values(["failed", "start_time"], ascending=[True, False])
    kept = latest.drop_duplicates(subset=["group_key", "_seed"]).drop(columns="_seed")
    return kept.reset_index(drop=True), len(runs) - len(kept)


def pick_baseline(runs: pd.DataFrame, selected: set[str], baseline: str | None, experiment: str,
                  where: str = "") -> pd.Series:
    """`--baseline` (an id or prefix), else the latest run tagged baseline=true among `runs`
    (within the selection when it holds one); `where` names the data `runs` were narrowed to."""
    if baseline:
        match = runs[runs["run_id"].str.startswith(baseline.lower())]  # the id or a prefix of it
        if len(match) == 1 and match["failed"].iloc[0]:
            raise LstmlabError(f"--baseline {baseline}: that run failed (no finite test RMSE); pick a run that finished")
        if len(match) > 1:
            raise LstmlabError(f"--baseline {baseline} matches {len(match)} runs; give more of the id")
        if match.empty:
            raise LstmlabError(
                f"--baseline {baseline}: no finished run with final metrics by that id in experiment {experiment!r}"
                " (an older repeat of the same seed counts as its latest repeat)"
            )
        return match.iloc[0]
    tagged = runs[runs.get("tags.baseline", pd.Series(index=runs.index, dtype=object)) == "true"]
    if not tagged.empty and tagged["failed"].all():
        raise LstmlabError(
            f"the baseline in experiment {experiment!r}{where} has no run with a finite test RMSE: its "
            f"{len(tagged)} run(s) failed; train it again (lstmlab train trainer.seed=N) or pick a run with --baseline RUN_ID"
        )
    tagged = tagged[~tagged["failed"]]
    if tagged.empty:
        raise LstmlabError(
            f"no baseline in experiment {experiment!r}{where}: no finished run is tagged baseline=true; "
            "train one (lstmlab train) or pick a run with --baseline RUN_ID"
        )
    inside = tagged[tagged["run_id"].isin(selected)]
    return (inside if not inside.empty else tagged).sort_values("start_time").iloc[-1]
