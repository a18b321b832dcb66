"""Seed variance and the verdict: Welch's t-test across seeds, and the rule that needs both tests.

Welch's t-test (two-sided, unequal variances: a variant may be steadier or noisier than the
baseline) on one metric across the seeds of each group; it needs at least two runs on both
sides (with fewer there is no estimate of seed noise). The paired test over days is
comparison.paired; the verdict (`verdict`) asks both to agree after Holm's correction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Every other final metric is an error (or a time): lower is better.
HIGHER_IS_BETTER = frozenset({"test_r2", "test_directional_accuracy", "test_skill"})
MORE_SEEDS = "train with trainer.seed=1,2,3,..."


@dataclass(frozen=True)
class Test:
    """Welch's t-test of one group against the baseline group; `missing` says why there is none."""

    statistic: float  # NaN when no test was possible
    p_value: float  # NaN when no test was possible
    missing: str | None = None  # "no verdict (why)" when no test was possible


def summary(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for one value) and n of finite values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, 0
    sd = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    return float(np.mean(finite)), sd, int(finite.size)


def welch(group: Sequence[float], baseline: Sequence[float]) -> Test:
    """The group vs the baseline group: Welch's t statistic (group − baseline) and two-sided p."""
    if len(baseline) < 2:
        return Test(math.nan, math.nan, f"no verdict (baseline has one run; {MORE_SEEDS})")
    if len(group) < 2:
        return Test(math.nan, math.nan, f"no verdict (one run; {MORE_SEEDS})")
    with warnings.catch_warnings():  # seeds giving one value: scipy warns, the NaN p below says it
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(np.asarray(group, float), np.asarray(baseline, float), equal_var=False)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):  # both groups without any spread and equal means
        return Test(statistic, p_value, "no verdict (no spread across seeds)")
    return Test(statistic, p_value)


def verdict_head(verdict: str) -> str:
    """The verdict without its reason: 'no evidence (seeds and days disagree)' → 'no evidence'."""
    return verdict.split(" (", 1)[0]


def verdict(welch_statistic: float, welch_p_holm: float, dm_statistic: float, dm_p_holm: float,
            metric: str, alpha: float) -> str:
    """`better`/`worse` only when both Holm-adjusted p-values are below alpha and agree in sign.

    Welch's statistic is on `metric` (higher is worse for an error); DM's on the squared test
    errors (group − baseline: positive is worse).
    """
    if not (welch_p_holm < alpha and dm_p_holm < alpha):
        return "no evidence"
    welch_better = (welch_statistic > 0) == (metric in HIGHER_IS_BETTER)
    dm_better = dm_statistic < 0
    if welch_better != dm_better:
        return "no evidence (seeds and days disagree)"
    return "better" if welch_better else "worse"
