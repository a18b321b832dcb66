"""Seed groups: runs equal in every configuring param but the seed, on the same data, tested
against the baseline's group (comparison.stats); and the per-run table of differences."""

from __future__ import annotations

import math

import pandas as pd

from lstmlab.comparison import stats
from lstmlab.comparison.selection import FINGERPRINT_TAG, NOT_CONFIGURING
from lstmlab.records.names import FINAL_METRICS


def group_keys(runs: pd.DataFrame) -> pd.Series:
    """Equal keys ⇔ equal configuration but for the seed, and the same data."""
    columns = sorted(c for c in runs.columns if c.startswith("params.") and c[len("params."):] not in NOT_CONFIGURING)
    if FINGERPRINT_TAG in runs:
        columns.append(FINGERPRINT_TAG)
    return runs[columns].astype("string").fillna("<unset>").apply(tuple, axis=1)


def group_labels(runs: pd.DataFrame) -> dict[tuple, str]:
    """The variant name, plus the params that tell apart groups sharing one variant name."""
    first = runs.drop_duplicates("group_key").set_index("group_key")
    names = first.get("tags.variant", first["tags.mlflow.runName"]).fillna(first["tags.mlflow.runName"]).astype(str)
    labels = {}
    for name, keys in names.groupby(names).groups.items():
        if len(keys) == 1:
            labels[keys[0]] = name
            continue
        rows = first.loc[list(keys)]
        differing = [  # `_target_` only repeats the class a `name` param already tells
            c for c in sorted(rows.columns)
            if (c.startswith("params.") or c == FINGERPRINT_TAG) and not c.endswith("._target_")
            and c[len("params."):] not in NOT_CONFIGURING and rows[c].astype("string").nunique(dropna=False) > 1
        ]
        for key in keys:
            parts = [f"data={rows.at[key, c][:8]}" if c == FINGERPRINT_TAG else f"{c[len('params.'):]}={rows.at[key, c]}"
                     for c in differing[:4]]
            labels[key] = f"{name} ({', '.join(parts)})"
    return labels


def better_first(metric: str) -> bool:
    """sort_values' `ascending` for best first."""
    return metric not in stats.HIGHER_IS_BETTER


def run_table(runs: pd.DataFrame, base: pd.Series, metric: str) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs["tags.mlflow.runName"],
            "group": runs["group"],
            "seed": runs.get("params.trainer.seed"),
            "baseline_run": runs["run_id"] == base["run_id"],
            "start_time": runs["start_time"],
        }
    )
    for name in FINAL_METRICS:
        column = f"metrics.{name}"
        values = runs[column] if column in runs else pd.Series(math.nan, index=runs.index)
        reference = base.get(column, math.nan)
        table[name] = values
        table[f"{name}_diff"] = values - reference
        table[f"{name}_rel_diff"] = (values - reference) / abs(reference) if reference else math.nan
    return table.sort_values(metric, ascending=better_first(metric), kind="stable").reset_index(drop=True)


def group_table(runs: pd.DataFrame, base_key: tuple, metric: str, alpha: float) -> pd.DataFrame:
    column = f"metrics.{metric}"
    reference = runs.loc[runs["group_key"] == base_key, column].tolist()
    base_mean = stats.summary(reference)[0]
    rows = []
    for key, members in runs.groupby("group_key", sort=False):
        row = {
            "group": members["group"].iloc[0],
            "variant": members.get("tags.variant", members["tags.mlflow.runName"]).iloc[0],
            "baseline_group": key == base_key,
            "n": len(members),
            "seeds": ",".join(sorted(members.get("params.trainer.seed", pd.Series(dtype=str)).dropna().astype(str),
                                     key=_natural)),
        }
        for name in FINAL_METRICS:
            values = members[f"metrics.{name}"].tolist() if f"metrics.{name}" in members else []
            row[f"{name}_mean"], row[f"{name}_sd"], _ = stats.summary(values)
        row[f"{metric}_diff"] = row[f"{metric}_mean"] - base_mean
        row[f"{metric}_rel_diff"] = row[f"{metric}_diff"] / abs(base_mean) if base_mean else math.nan
        if key == base_key:
            row.update(t_statistic=math.nan, p_value=math.nan, verdict="baseline")
        else:
            test = stats.welch(members[column].tolist(), reference, metric, alpha)
            row.update(t_statistic=test.statistic, p_value=test.p_value, verdict=test.verdict)
        rows.append(row)
    groups = pd.DataFrame(rows)
    return groups.sort_values(f"{metric}_mean", ascending=better_first(metric), kind="stable").reset_index(drop=True)


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)
