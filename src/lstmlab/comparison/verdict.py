"""The verdict on each configuration: judging every seed group against the baseline group.

A verdict is about a configuration, so its unit of replication is the training run (seed). Per
group: Welch's t-test on the runs' test RMSE (comparison.seeds), Holm-adjusted over every group
of the report that has one (`welch_p_holm`); and the effect on test RMSE over the paired test
days with its two-level interval (comparison.effect: seeds and day blocks resampled).
`better`/`worse` needs both: Holm's p below alpha and the interval excluding 0, the same way;
otherwise `no evidence`, with the reason when one of them points somewhere. Tests over days
alone (MCS, SPA: comparison.forecasters) speak of the trained models, not of this verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lstmlab.comparison import seeds
from lstmlab.comparison.effect import DayDraws, Effect, effect
from lstmlab.comparison.scope import DATA_COLUMN
from lstmlab.names import PREDICTIONS_ARTIFACT

COLUMNS = ("t_statistic", "p_value", "welch_p_holm", "paired_days", "rmse_change", "rmse_change_low",
           "rmse_change_high", "verdict")
OTHER_DATA = "no verdict (other data: no common test days)"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order; NaN stays NaN and is not counted.

    By hand (a sort and a running maximum) rather than statsmodels' multipletests: importing
    statsmodels.stats costs compare ~0.7 s for ten lines; the tests check it against statsmodels.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def verdict(t_statistic: float, welch_p_holm: float, low: float, high: float, alpha: float) -> str:
    """`better`/`worse` when Welch (Holm) is below alpha and the interval [low, high] of the test
    RMSE change excludes 0 on the same side; else `no evidence`, saying which one spoke."""
    welch_says = None if not welch_p_holm < alpha else "better" if t_statistic < 0 else "worse"
    interval_says = "better" if high < 0 else "worse" if low > 0 else None
    if welch_says == interval_says:
        return welch_says or "no evidence"
    if welch_says and interval_says:
        return "no evidence (Welch and the interval point opposite ways)"
    if welch_says:
        return f"no evidence (Welch says {welch_says}; the interval holds 0)"
    return f"no evidence (the interval says {interval_says}; Welch p* ≥ {alpha:g})"


def verdict_head(text: str) -> str:
    """The verdict without its reason: 'no evidence (Welch says ...)' → 'no evidence'."""
    return text.split(" (", 1)[0]


class PairedDays:
    """Each group's paired test days and their effect: the runs' daily squared errors (`losses`,
    days × run ids, NaN where a run has no forecast) and why a run has none (`unusable`).

    Plain arrays rather than DataFrame lookups: a report may judge hundreds of groups."""

    def __init__(self, losses: pd.DataFrame, unusable: dict[str, str]) -> None:
        self.values, self.unusable = losses.to_numpy(), unusable
        self.column = {run_id: n for n, run_id in enumerate(losses.columns)}
        self.complete = ~np.isnan(self.values).any(axis=0)  # runs with a forecast on every day
        self.draws: dict[int, DayDraws] = {}
        self.full_means = np.empty((0, 0))
        if self.complete.any():  # their day means once, sliced per group
            draws = self.draws[len(self.values)] = DayDraws(len(self.values))
            self.full_means = np.full((draws.counts.shape[0], self.values.shape[1]), math.nan)
            self.full_means[:, self.complete] = draws.means(self.values[:, self.complete])

    def compare(self, member_ids: list[str], base_ids: list[str]) -> tuple[int, Effect, str | None]:
        """Paired days, effect and, when there is none, why ("no verdict (...)")."""
        nothing = Effect(math.nan, math.nan, math.nan)
        lacking = [run_id for run_id in (*member_ids, *base_ids) if run_id in self.unusable]
        if lacking:
            more = f" and {len(lacking) - 1} more" if len(lacking) > 1 else ""
            return 0, nothing, f"no verdict (run {lacking[0][:8]}{more}: {PREDICTIONS_ARTIFACT} {self.unusable[lacking[0]]})"
        members, base = [self.column[i] for i in member_ids], [self.column[i] for i in base_ids]
        if self.complete[members].all() and self.complete[base].all():
            days = len(self.values)
            means = (self.full_means[:, members], self.full_means[:, base])
            return days, effect(self.values[:, members], self.values[:, base], self.draws[days], means), None
        paired = ~np.isnan(self.values[:, members + base]).any(axis=1)
        days = int(paired.sum())
        if days < 3:
            return days, nothing, "no verdict (fewer than 3 test days in common)"
        if days not in self.draws:
            self.draws[days] = DayDraws(days)
        return days, effect(self.values[paired][:, members], self.values[paired][:, base], self.draws[days]), None


def judge(groups: pd.DataFrame, runs: pd.DataFrame, codes: pd.Series, alpha: float,
          paired: PairedDays) -> pd.DataFrame:
    """`groups` (row g: the group of the runs whose `codes` is g) with the tests, Holm and verdicts.

    A group on other data than the baseline's (possible with --all) gets no test: its runs
    forecast other days, and its seeds another series; so it counts in no Holm correction. A
    group of one run gets its effect but no interval: one run tells nothing of seed noise.
    """
    tested = runs.get(f"metrics.{seeds.TESTED_METRIC}", pd.Series(math.nan, index=runs.index)).to_numpy(float)
    run_ids = runs["run_id"].to_numpy()
    data = (runs[DATA_COLUMN].fillna("") if DATA_COLUMN in runs else pd.Series("", index=runs.index)).to_numpy()
    # each group's runs in seed order (then by id): the seed draws do not depend on the order runs were logged in
    seed = pd.to_numeric(runs.get("params.trainer.seed", pd.Series(math.nan, index=runs.index)), errors="coerce")
    order = np.lexsort((run_ids, seed.fillna(np.inf).to_numpy()))
    members_of = [order[codes.to_numpy()[order] == g] for g in range(len(groups))]
    base = members_of[int(np.flatnonzero(groups["baseline_group"].to_numpy())[0])]
    rows: list[dict[str, object]] = []
    for members in members_of:
        if members is base or data[members[0]] != data[base[0]]:
            rows.append(dict.fromkeys(COLUMNS, math.nan) | {"verdict": "baseline" if members is base else OTHER_DATA})
            continue
        finite = [values[np.isfinite(values)].tolist() for values in (tested[members], tested[base])]
        welch = seeds.welch(*finite)
        days, change, why_not = paired.compare(run_ids[members].tolist(), run_ids[base].tolist())
        one_run = len(members) < 2 or len(base) < 2
        rows.append({"t_statistic": welch.statistic, "p_value": welch.p_value, "paired_days": days,
                     "rmse_change": change.change, "rmse_change_low": math.nan if one_run else change.low,
                     "rmse_change_high": math.nan if one_run else change.high,
                     "verdict": welch.missing or why_not})
    tests = pd.DataFrame(rows, index=groups.index, columns=list(COLUMNS))
    # Holm over the groups that have the test: a NaN p (the baseline, other data, no test) counts in none.
    tests["paired_days"] = tests["paired_days"].astype("Int64")  # a count; empty for the baseline
    tests["welch_p_holm"] = holm(tests["p_value"])
    tests["verdict"] = [
        row.verdict if isinstance(row.verdict, str)
        else verdict(row.t_statistic, row.welch_p_holm, row.rmse_change_low, row.rmse_change_high, alpha)
        for row in tests.itertuples()
    ]
    return pd.concat([groups, tests], axis=1)
