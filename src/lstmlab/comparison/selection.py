"""Selecting runs: the finished runs of an experiment, one sweep or a filter, and the baseline.

Sweep parents and pruned trials are left out; within a seed group, runs repeating a seed
(reruns, retraining) count once, the latest: a repeat is the same sample again, not a new one.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab.errors import LstmlabError
from lstmlab.names import REPORT_TAG


def search_finished(experiment_id: str, filter_string: str | None) -> pd.DataFrame:
    clauses = ["attributes.status = 'FINISHED'", *([filter_string] if filter_string else [])]
    try:
        return mlflow.search_runs(experiment_ids=[experiment_id], filter_string=" AND ".join(clauses))
    except MlflowException as error:
        raise LstmlabError(f"bad filter {filter_string!r}: {error.message}") from None


def comparable(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Runs with the metric, without sweep parents (their metrics summarize children), pruned
    trials or compare's own report runs."""
    if f"metrics.{metric}" not in runs:
        return runs.iloc[0:0]
    keep = runs[f"metrics.{metric}"].notna()
    if f"tags.{REPORT_TAG}" in runs:
        keep &= runs[f"tags.{REPORT_TAG}"].ne("true")
    if "tags.mlflow.parentRunId" in runs:
        keep &= ~runs["run_id"].isin(set(runs["tags.mlflow.parentRunId"].dropna()))
    if "tags.optuna_study" in runs:  # a study's parent run, even before any trial finished
        trial = runs["tags.optuna_trial"].notna() if "tags.optuna_trial" in runs else False
        keep &= runs["tags.optuna_study"].isna() | trial
    if "tags.state" in runs:
        keep &= runs["tags.state"].ne("pruned")
    return runs[keep].reset_index(drop=True)


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
    seed = runs["params.trainer.seed"] if "params.trainer.seed" in runs else runs["run_id"]
    latest = runs.assign(_seed=seed.fillna(runs["run_id"])).sort_values("start_time", ascending=False)
    kept = latest.drop_duplicates(subset=["group_key", "_seed"]).drop(columns="_seed")
    return kept.reset_index(drop=True), len(runs) - len(kept)


def pick_baseline(runs: pd.DataFrame, selected: set[str], baseline: str | None, experiment: str,
                  where: str = "") -> pd.Series:
    """`--baseline` (an id or prefix), else the latest run tagged baseline=true among `runs`
    (within the selection when it holds one); `where` names the data `runs` were narrowed to."""
    if baseline:
        match = runs[runs["run_id"].str.startswith(baseline.lower())]  # the id or a prefix of it
        if len(match) > 1:
            raise LstmlabError(f"--baseline {baseline} matches {len(match)} runs; give more of the id")
        if match.empty:
            raise LstmlabError(
                f"--baseline {baseline}: no finished run with final metrics by that id in experiment {experiment!r}"
                " (an older repeat of the same seed counts as its latest repeat)"
            )
        return match.iloc[0]
    tagged = runs[runs.get("tags.baseline", pd.Series(index=runs.index, dtype=object)) == "true"]
    if tagged.empty:
        raise LstmlabError(
            f"no baseline in experiment {experiment!r}{where}: no finished run is tagged baseline=true; "
            "train one (lstmlab train) or pick a run with --baseline RUN_ID"
        )
    inside = tagged[tagged["run_id"].isin(selected)]
    return (inside if not inside.empty else tagged).sort_values("start_time").iloc[-1]
