"""Seed groups: runs equal in every configuring param but the seed, on the same data, judged
against the baseline's group (comparison.verdict); and the per-run table of differences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lstmlab.comparison.scope import DATA_COLUMN, bare_names
from lstmlab.comparison.verdict import judge
from lstmlab.names import CONFIRM_BASELINE_TAG, CONFIRM_TRIAL_TAG, FINAL_METRICS, NOT_CONFIGURING


def group_keys(runs: pd.DataFrame) -> pd.Series:
    """Equal keys ⇔ equal configuration but for the seed, and the same data."""
    columns = sorted(c for c in runs.columns if c.startswith("params.") and c[len("params."):] not in NOT_CONFIGURING)
    if DATA_COLUMN in runs:
        columns.append(DATA_COLUMN)
    text = runs[columns].astype("string").fillna("<unset>")
    if not columns:
        return pd.Series([()] * len(runs), index=runs.index, dtype=object)
    return pd.Series(list(zip(*(text[column].tolist() for column in columns))), index=runs.index, dtype=object)


MAX_PARTS = 3  # params named in one label
MAX_VALUE = 14  # characters of one param's value in a label
UNSET = ("nan", "None", "null", "<unset>", "<NA>", "")


def group_labels(runs: pd.DataFrame) -> dict[tuple, str]:
    """Short, unique labels: "trial 17" for a sweep trial's configuration retrained by its confirm
    stage; else the variant name, plus the fewest differing params that tell apart groups sharing
    one name (never an unset value); a number as the last resort."""
    first = runs.drop_duplicates("group_key").set_index("group_key")
    names = first.get("tags.variant", first["tags.mlflow.runName"]).fillna(first["tags.mlflow.runName"]).astype(str)
    labels = {}
    column = f"tags.{CONFIRM_TRIAL_TAG}"
    if column in runs:  # a group's confirm runs say which trial it is: the label a sweep's user knows
        trials = runs.dropna(subset=[column]).drop_duplicates("group_key").set_index("group_key")[column]
        labels = {key: f"trial {number}" for key, number in trials.items()}
    base_column = f"tags.{CONFIRM_BASELINE_TAG}"
    if base_column in runs:  # a confirm stage's baseline: "custom" when the sweep fixes a model key
        keys = runs.loc[runs[base_column].eq("true"), "group_key"].drop_duplicates()
        labels |= {key: "baseline" for key in keys if key not in labels}
    names = names.drop(list(labels))
    for name, keys in names.groupby(names).groups.items():
        keys = list(keys)
        if len(keys) == 1:
            labels[keys[0]] = name
            continue
        values = _label_values(first.loc[keys])
        parts: dict[tuple, list[str]] = {key: [] for key in keys}
        distinct = lambda labelled: len({tuple(p) for p in labelled.values()})  # noqa: E731
        for column in values.columns:  # fewest unset values first: the params every group has
            if distinct(parts) == len(keys) or max(map(len, parts.values())) >= MAX_PARTS:
                break
            tried = {key: parts[key] + ([f"{column}={_clip(values.at[key, column])}"]
                                        if values.at[key, column] not in UNSET else []) for key in keys}
            if distinct(tried) > distinct(parts):  # only a param that tells more groups apart
                parts = tried
        for key in keys:
            labels[key] = f"{name} ({', '.join(parts[key])})" if parts[key] else name
    return _unique(labels)


def _label_values(rows: pd.DataFrame) -> pd.DataFrame:
    """The configuring columns whose values differ between `rows`, under short names, as text."""
    columns = [  # `_target_` only repeats the class a `name` param already tells
        c for c in sorted(rows.columns)
        if (c.startswith("params.") and c[len("params."):] not in NOT_CONFIGURING and not c.endswith("._target_"))
        or c == DATA_COLUMN
    ]
    text = rows[columns].astype("string").fillna("<unset>")
    if DATA_COLUMN in text:  # the data's name; with its fingerprint when two datasets share a name
        names = rows["data_name"]
        short = bare_names(names)
        text[DATA_COLUMN] = short if short.nunique() == names.nunique() else names.str.replace(" ", ":", regex=False)
    text = text.loc[:, text.nunique() > 1]
    full = {c: "data" if c == DATA_COLUMN else c[len("params."):] for c in text.columns}
    last = {c: name.rsplit(".", 1)[-1] for c, name in full.items()}
    clash = {n for n in last.values() if list(last.values()).count(n) > 1}
    text.columns = [last[c] if last[c] not in clash else full[c] for c in text.columns]
    unset = text.isin(UNSET).sum()
    return text[sorted(text.columns, key=lambda c: (unset[c], c))]


def _clip(value: str) -> str:
    """A param's value for a label: a number with 4 significant digits (a sweep's 0.04242596238…
    reads 0.04243, never cut mid-number), other text cut to MAX_VALUE characters."""
    try:
        number = float(value)
    except ValueError:
        return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"
    return value if number.is_integer() and len(value) <= MAX_VALUE else f"{number:.4g}"


def _unique(labels: dict[tuple, str]) -> dict[tuple, str]:
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    counters: dict[str, int] = {}
    unique = {}
    for key, label in labels.items():
        if seen[label] > 1:
            counters[label] = counters.get(label, 0) + 1
            label = f"{label} #{counters[label]}"
        unique[key] = label
    return unique


# Every other final metric is an error (or a time): lower is better.
HIGHER_IS_BETTER = frozenset({"test_r2", "test_directional_accuracy", "test_skill"})


def better_first(metric: str) -> bool:
    """sort_values' `ascending` for best first."""
    return metric not in HIGHER_IS_BETTER


def run_table(runs: pd.DataFrame, base: pd.Series, metric: str) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs["tags.mlflow.runName"],
            "group": runs["group"],
            "seed": runs.get("params.trainer.seed"),
            "data": runs.get("data_name"),
            "evaluation": runs.get("evaluation"),
            "baseline_run": runs["run_id"] == base["run_id"],
            "status": runs["status"].where(~runs["failed"] | runs["status"].ne("FINISHED"), "FINISHED (not finite)"),
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
    # best first by the metric; failed runs last, whatever they recorded before they failed
    order = table.assign(_failed=runs["failed"].to_numpy()).sort_values(
        ["_failed", metric], ascending=[True, better_first(metric)], kind="stable", na_position="last").index
    return table.loc[order].reset_index(drop=True)


def group_table(runs: pd.DataFrame, base_key: tuple, metric: str, alpha: float, margin: float,
                effect: float) -> pd.DataFrame:
    """One row per seed group: n (seeds that finished with a finite test RMSE), seeds, mean and
    sd (over those) of every final metric, the effect, its strength and the verdict
    (comparison.verdict; `margin` and `effect` as there); sorted best first by `metric`.
    Computed per column over all groups at once: a study of 2,000 runs has hundreds of groups."""
    codes = pd.Series(pd.factorize(runs["group_key"])[0], index=runs.index)  # groups in order of appearance
    first = runs[~codes.duplicated()].set_axis(codes.drop_duplicates().to_numpy())  # each group's first run
    seeds = runs.get("params.trainer.seed", pd.Series(pd.NA, index=runs.index, dtype="string")).astype("string")
    finished = ~runs["failed"]
    table = pd.DataFrame({
        "group": first["group"],
        "variant": first.get("tags.variant", first["tags.mlflow.runName"]),
        "baseline_group": first["group_key"].map(lambda key: key == base_key),
        "n": finished.groupby(codes).sum(),
        "seeds": seeds.groupby(codes).agg(lambda values: ",".join(sorted(values.dropna(), key=_natural))),
    })
    for name in FINAL_METRICS:
        values = runs[f"metrics.{name}"] if f"metrics.{name}" in runs else pd.Series(math.nan, index=runs.index)
        finite = values.astype(float).where(np.isfinite(values.astype(float)) & finished)
        table[f"{name}_mean"] = finite.groupby(codes).mean()
        table[f"{name}_sd"] = finite.groupby(codes).std(ddof=1)
    base_mean = table.loc[table["baseline_group"], f"{metric}_mean"].iloc[0]
    table[f"{metric}_diff"] = table[f"{metric}_mean"] - base_mean
    table[f"{metric}_rel_diff"] = table[f"{metric}_diff"] / abs(base_mean) if base_mean else math.nan
    groups = judge(table.reset_index(drop=True), runs, codes, alpha, margin, effect)
    return groups.sort_values(f"{metric}_mean", ascending=better_first(metric), kind="stable",
                              na_position="last").reset_index(drop=True)


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)
