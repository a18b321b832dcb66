"""The verdict on each configuration: its seed group judged against the baseline's group.

A verdict is about a configuration, so its unit of replication is the training run (seed). Per
group, from its seeds' test RMSE alone (comparison.seeds): the change of the geometric-mean test
RMSE with its 95 % interval and the same t-test's p-value, Holm-adjusted over every group of the
report that has one (`welch_p_holm`). The verdict:

- `better` / `worse`: Holm's p below alpha (so the interval excludes 0, on that side);
- `equivalent`: otherwise, when the interval lies inside ±`margin` (two one-sided tests at
  2.5 % each: the printed interval is the evidence);
- `no evidence`: neither, with the smallest effect these seeds could have detected (`mde`,
  comparison.power) beside it, so "no effect" and "could not have seen one" read differently.

Seeds that failed (a run FAILED or KILLED, or a finished run whose test RMSE is not a finite
number) count in their group: `failed` says "2/5", the estimate is over the seeds that finished,
and a verdict on such a group says how many failed and how the failure rate compares with the
baseline's (Fisher's exact test). Tests over days alone (MCS, SPA: comparison.forecasters) speak
of the trained models, not of this verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from lstmlab.comparison import power, seeds
from lstmlab.comparison.scope import DATA_COLUMN

COLUMNS = ("t_statistic", "p_value", "welch_p_holm", "rmse_change", "rmse_change_low", "rmse_change_high",
           "sd_log", "mde", "seeds_needed", "p_beats", "failed", "failure_p", "verdict")
OTHER_DATA = "no verdict (other data: no common test days)"
HEADS = ("better", "worse", "equivalent", "no evidence", "baseline", "no verdict")


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


def verdict(effect: seeds.SeedEffect, p_holm: float, alpha: float, margin: float, tested: int,
            mde: float) -> str:
    """The verdict of one tested group (see the module's docstring), with its reason when not plain."""
    if p_holm < alpha:
        return "better" if effect.change < 0 else "worse"
    if -margin < effect.low and effect.high < margin:
        return f"equivalent (within ±{margin:.0%})"
    reasons = []
    if effect.p_value < alpha:
        reasons.append(f"p {effect.p_value:.2g}, {p_holm:.2g} after Holm over {tested} groups")
    if math.isfinite(mde):
        reasons.append(f"smallest detectable effect {mde:.1%}")
    return "no evidence" + (f" ({'; '.join(reasons)})" if reasons else "")


def verdict_head(text: str) -> str:
    """The verdict without its reason: 'no evidence (smallest ...)' → 'no evidence'."""
    return text.split(" (", 1)[0]


def with_failures(text: str, failed: int, total: int, base_failed: int, base_total: int, failure_p: float) -> str:
    """`text` saying how many of the group's seeds failed, when any did, and against the baseline's rate."""
    if not failed:
        return text
    finished = total - failed
    said = (f"{failed}/{total} seeds failed: judged on the {finished} that finished" if finished
            else f"all {total} seeds failed" if total > 1 else "its one seed failed")
    said += (f"; failure rate {failed / total:.0%} vs the baseline's {base_failed / base_total:.0%}"
             f" (Fisher p {failure_p:.2g})" if base_total else "")
    head, _, reason = text.partition(" (")
    if head == "no verdict" and not finished:
        return f"no verdict ({said})"
    return f"{head} ({said}{'; ' + reason[:-1] if reason else ''})"


def judge(groups: pd.DataFrame, runs: pd.DataFrame, codes: pd.Series, alpha: float,
          margin: float = power.MARGIN, effect_of_interest: float = power.EFFECT) -> pd.DataFrame:
    """`groups` (row g: the group of the runs whose `codes` is g) with the effect, Holm, strength
    and verdict columns. `runs` holds finished and failed runs (column `failed`: True for a run
    that FAILED, was KILLED or has no finite test RMSE).

    A group on other data than the baseline's (possible with --all) gets no test: its seeds are
    another series' seeds; so it counts in no Holm correction.
    """
    tested_metric = runs.get(f"metrics.{seeds.TESTED_METRIC}", pd.Series(math.nan, index=runs.index)).to_numpy(float)
    failed = runs["failed"].to_numpy(bool) if "failed" in runs else ~np.isfinite(tested_metric)
    data = (runs[DATA_COLUMN].fillna("") if DATA_COLUMN in runs else pd.Series("", index=runs.index)).to_numpy()
    members_of = [np.flatnonzero(codes.to_numpy() == g) for g in range(len(groups))]
    base_code = int(np.flatnonzero(groups["baseline_group"].to_numpy())[0])
    base = members_of[base_code]
    base_values = tested_metric[base][~failed[base]]
    base_failed = int(failed[base].sum())
    rows: list[dict[str, object]] = []
    effects: dict[int, seeds.SeedEffect] = {}  # the tested groups' effects, by code
    for code, members in enumerate(members_of):
        n_failed = int(failed[members].sum())
        row: dict[str, object] = dict.fromkeys(COLUMNS, math.nan) | {"failed": f"{n_failed}/{len(members)}"}
        if code == base_code or data[members[0]] != data[base[0]]:
            rows.append(row | {"verdict": "baseline" if code == base_code else OTHER_DATA})
            continue
        effect = seeds.seed_effect(tested_metric[members][~failed[members]], base_values)
        effects[code] = effect
        failure_p = float(stats.fisher_exact([[n_failed, len(members) - n_failed],
                                              [base_failed, len(base) - base_failed]])[1])
        rows.append(row | {
            "t_statistic": effect.statistic, "p_value": effect.p_value, "rmse_change": effect.change,
            "rmse_change_low": effect.low, "rmse_change_high": effect.high, "sd_log": effect.sd_log,
            "p_beats": effect.p_beats, "failure_p": failure_p if n_failed or base_failed else math.nan,
            "verdict": effect.missing,
        })
    table = pd.DataFrame(rows, index=groups.index, columns=list(COLUMNS))
    table["welch_p_holm"] = holm(table["p_value"])  # NaN p (the baseline, other data, no test) counts in none
    tested = int(np.isfinite(table["p_value"].to_numpy(float)).sum())
    level = alpha / max(tested, 1)  # Holm's strictest step: what a group that differs must meet
    mde, needed, verdicts = (table[column].to_numpy(copy=True) for column in ("mde", "seeds_needed", "verdict"))
    p_holm, failure_p = table["welch_p_holm"].to_numpy(), table["failure_p"].to_numpy()
    for code, effect in effects.items():  # plain arrays: a study has hundreds of groups
        members = members_of[code]
        mde[code] = power.mde(effect.sd_log, effect.n, effect.n_base, level)
        needed[code] = power.seeds_needed(effect.sd_log, effect_of_interest, level)
        text = effect.missing or verdict(effect, float(p_holm[code]), alpha, margin, tested, float(mde[code]))
        verdicts[code] = with_failures(text, int(failed[members].sum()), len(members), base_failed, len(base),
                                       float(failure_p[code]))
    table["mde"], table["seeds_needed"], table["verdict"] = mde, needed, verdicts
    return pd.concat([groups, table], axis=1)
