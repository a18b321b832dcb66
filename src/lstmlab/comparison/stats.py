"""Seed variance: is a variant's difference from the baseline larger than what seeds alone do?

Welch's t-test (two-sided, unequal variances: a variant may be steadier or noisier than the
baseline) on one metric across the seeds of each group. A verdict needs at least two runs on
both sides; with fewer there is no estimate of seed noise and no verdict is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
# Every other final metric is an error (or a time): lower is better.
HIGHER_IS_BETTER = frozenset({"test_r2", "test_directional_accuracy", "test_skill"})
MORE_SEEDS = "train with trainer.seed=1,2,3,..."


@dataclass(frozen=True)
class Test:
    """Welch's t-test of one group against the baseline group, and what it says."""

    statistic: float  # NaN when no test was possible
    p_value: float  # NaN when no test was possible
    verdict: str  # "better", "worse", "no evidence" or "no verdict (why)"


def summary(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for one value) and n of finite values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, 0
    sd = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    return float(np.mean(finite)), sd, int(finite.size)


def welch(
    group: Sequence[float],
    baseline: Sequence[float],
    metric: str,
    alpha: float = ALPHA,
) -> Test:
    """The group vs the baseline group on `metric`: better / worse only when p < alpha."""
    if len(baseline) < 2:
        return Test(math.nan, math.nan, f"no verdict (baseline has one run; {MORE_SEEDS})")
    if len(group) < 2:
        return Test(math.nan, math.nan, f"no verdict (one run; {MORE_SEEDS})")
    result = stats.ttest_ind(np.asarray(group, float), np.asarray(baseline, float), equal_var=False)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):  # both groups without any spread and equal means
        return Test(statistic, p_value, "no verdict (no spread across seeds)")
    if p_value >= alpha:
        return Test(statistic, p_value, "no evidence")
    group_higher = statistic > 0
    better = group_higher == (metric in HIGHER_IS_BETTER)
    return Test(statistic, p_value, "better" if better else "worse")
