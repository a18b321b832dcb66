"""Each seed group against the baseline group: Welch over seeds, Diebold–Mariano over days,
Holm over every group of the report, the effect on test RMSE with its interval, and the verdict."""

from __future__ import annotations

import math

import pandas as pd

from lstmlab.comparison import paired, stats
from lstmlab.comparison.predictions import squared_errors
from lstmlab.comparison.scope import DATA_COLUMN

PAIRED_COLUMNS = ("paired_days", "dm_stat", "dm_p", "rmse_change", "rmse_change_low", "rmse_change_high")


def paired_test(members: pd.DataFrame, base: pd.DataFrame, predictions: dict[str, pd.DataFrame | None]) -> dict:
    """DM and the effect for one group vs the baseline group over their common test days."""
    row: dict[str, object] = dict.fromkeys(PAIRED_COLUMNS, math.nan) | {"paired_days": 0, "paired_missing": None}
    if DATA_COLUMN in members and set(members[DATA_COLUMN]) != set(base[DATA_COLUMN]):
        row["paired_missing"] = "no verdict (other data: no common test days)"
        return row
    ids = [*members["run_id"], *base["run_id"]]
    missing = [i for i in ids if predictions.get(i) is None]
    if missing:
        row["paired_missing"] = f"no verdict ({len(missing)} of the runs have no predictions.csv to pair days)"
        return row
    errors = squared_errors([predictions[i] for i in ids]).to_numpy().T
    if errors.shape[1] < 3:
        row["paired_missing"] = "no verdict (fewer than 3 test days in common)"
        return row
    loss, base_loss = errors[: len(members)].mean(axis=0), errors[len(members):].mean(axis=0)
    test = paired.diebold_mariano(loss - base_loss)
    change, low, high = paired.effect_interval(loss, base_loss)
    row.update(paired_days=test.days, dm_stat=test.statistic, dm_p=test.p_value,
               rmse_change=change, rmse_change_low=low, rmse_change_high=high)
    if math.isnan(test.p_value):
        row["paired_missing"] = "no verdict (the same squared errors every day)"
    return row


def judge(groups: pd.DataFrame, runs: pd.DataFrame, base_key: tuple, metric: str, alpha: float,
          predictions: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """`groups` (one row per group_key, in `runs`' group order) with the tests, Holm and verdicts."""
    column = f"metrics.{metric}"
    base = runs[runs["group_key"] == base_key]
    rows = []
    for key, members in runs.groupby("group_key", sort=False):
        if key == base_key:
            rows.append(dict.fromkeys(PAIRED_COLUMNS, math.nan) | {"t_statistic": math.nan, "p_value": math.nan,
                                                                    "missing": "baseline"})
            continue
        welch = stats.welch(members[column].tolist(), base[column].tolist())
        row = paired_test(members, base, predictions)
        row.update(t_statistic=welch.statistic, p_value=welch.p_value, missing=welch.missing or row.pop("paired_missing"))
        row.pop("paired_missing", None)
        rows.append(row)
    tests = pd.DataFrame(rows, index=groups.index)
    tests["welch_p_holm"] = paired.holm(tests["p_value"].where(tests["missing"] != "baseline"))
    tests["dm_p_holm"] = paired.holm(tests["dm_p"].where(tests["missing"] != "baseline"))
    tests["verdict"] = [
        row.missing if isinstance(row.missing, str)
        else stats.verdict(row.t_statistic, row.welch_p_holm, row.dm_stat, row.dm_p_holm, metric, alpha)
        for row in tests.itertuples()
    ]
    order = ["t_statistic", "p_value", "welch_p_holm", "dm_stat", "dm_p", "dm_p_holm", "paired_days",
             "rmse_change", "rmse_change_low", "rmse_change_high", "verdict"]
    return pd.concat([groups, tests[order]], axis=1)

