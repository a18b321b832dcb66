"""Each seed group against the baseline group: Welch over seeds, Diebold–Mariano over days,
Holm over every group of the report, the effect on test RMSE with its interval, and the verdict."""

from __future__ import annotations

import math

import pandas as pd

from lstmlab.comparison import paired, stats
from lstmlab.comparison.predictions import squared_errors
from lstmlab.comparison.scope import DATA_COLUMN
from lstmlab.names import PREDICTIONS_ARTIFACT

PAIRED_COLUMNS = ("paired_days", "dm_stat", "dm_p", "rmse_change", "rmse_change_low", "rmse_change_high")
NO_TEST = dict.fromkeys(("t_statistic", "p_value", *PAIRED_COLUMNS), math.nan)
OTHER_DATA = "no verdict (other data: no common test days)"


def paired_test(members: list[str], base: list[str], errors: dict[str, pd.Series]) -> dict:
    """DM and the effect for one group vs the baseline group (run ids) over their common test days;
    `errors`: each run's daily squared errors (none for a run without predictions)."""
    row: dict[str, object] = dict.fromkeys(PAIRED_COLUMNS, math.nan) | {"paired_days": 0, "paired_missing": None}
    missing = [i for i in (*members, *base) if i not in errors]
    if missing:
        row["paired_missing"] = f"no verdict ({len(missing)} of the runs have no {PREDICTIONS_ARTIFACT} to pair days)"
        return row
    days = pd.concat([errors[i] for i in (*members, *base)], axis=1, join="inner").to_numpy().T
    if days.shape[1] < 3:
        row["paired_missing"] = "no verdict (fewer than 3 test days in common)"
        return row
    loss, base_loss = days[: len(members)].mean(axis=0), days[len(members):].mean(axis=0)
    test = paired.diebold_mariano(loss - base_loss)
    change, low, high = paired.effect_interval(loss, base_loss)
    row.update(paired_days=test.days, dm_stat=test.statistic, dm_p=test.p_value,
               rmse_change=change, rmse_change_low=low, rmse_change_high=high)
    if math.isnan(test.p_value):
        row["paired_missing"] = "no verdict (the same squared errors every day)"
    return row


def judge(groups: pd.DataFrame, runs: pd.DataFrame, base_key: tuple, metric: str, alpha: float,
          predictions: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """`groups` (one row per group_key, in `runs`' group order) with the tests, Holm and verdicts.

    A group on other data than the baseline's (possible with --all) gets neither test: its runs
    forecast other days, and its seeds another series; so it counts in neither Holm correction.
    """
    column = f"metrics.{metric}"
    base = runs[runs["group_key"] == base_key]
    data = runs[DATA_COLUMN].fillna("") if DATA_COLUMN in runs else pd.Series("", index=runs.index)
    errors = {run_id: squared_errors(table) for run_id, table in predictions.items() if table is not None}
    rows = []
    for key, members in runs.groupby("group_key", sort=False):
        if key == base_key or data[members.index[0]] != data[base.index[0]]:
            rows.append(NO_TEST | {"missing": "baseline" if key == base_key else OTHER_DATA})
            continue
        welch = stats.welch(members[column].tolist(), base[column].tolist())
        row = paired_test(members["run_id"].tolist(), base["run_id"].tolist(), errors)
        row.update(t_statistic=welch.statistic, p_value=welch.p_value, missing=welch.missing or row.pop("paired_missing"))
        row.pop("paired_missing", None)
        rows.append(row)
    tests = pd.DataFrame(rows, index=groups.index)
    # Holm over the groups that have the test: a NaN p (the baseline, other data, no test) counts in none.
    tests["welch_p_holm"] = paired.holm(tests["p_value"])
    tests["dm_p_holm"] = paired.holm(tests["dm_p"])
    tests["verdict"] = [
        row.missing if isinstance(row.missing, str)
        else stats.verdict(row.t_statistic, row.welch_p_holm, row.dm_stat, row.dm_p_holm, metric, alpha)
        for row in tests.itertuples()
    ]
    order = ["t_statistic", "p_value", "welch_p_holm", "dm_stat", "dm_p", "dm_p_holm", "paired_days",
             "rmse_change", "rmse_change_low", "rmse_change_high", "verdict"]
    return pd.concat([groups, tests[order]], axis=1)
