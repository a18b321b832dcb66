"""Across seeds: a group's mean and spread, and Welch's t-test of its test RMSE against the baseline's.

A configuration is replicated by training runs (seeds), so its test is across them: Welch's
t-test (two-sided, unequal variances: a variant may be steadier or noisier than the baseline)
on each run's test RMSE. It needs at least two runs on both sides: with fewer there is no
estimate of seed noise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTED_METRIC = "test_rmse"  # the metric Welch's test reads, whatever --metric sorts by
MORE_SEEDS = "train with trainer.seed=1,2,3,..."


@dataclass(frozen=True)
class Welch:
    """Welch's t-test of one group against the baseline group; `missing` says why there is none."""

    statistic: float  # group − baseline; NaN when no test was possible
    p_value: float  # NaN when no test was possible
    missing: str | None = None  # "no verdict (why)" when no test was possible


def summary(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for one value) and n of finite values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, 0
    sd = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    return float(np.mean(finite)), sd, int(finite.size)


def welch(group: Sequence[float], baseline: Sequence[float]) -> Welch:
    """The group's test RMSEs vs the baseline group's: Welch's t (group − baseline) and two-sided p."""
    if len(baseline) < 2:
        return Welch(math.nan, math.nan, f"no verdict (baseline has one run; {MORE_SEEDS})")
    if len(group) < 2:
        return Welch(math.nan, math.nan, f"no verdict (one run; {MORE_SEEDS})")
    with warnings.catch_warnings():  # seeds giving one value: scipy warns, the NaN p below says it
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(np.asarray(group, float), np.asarray(baseline, float), equal_var=False)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):  # both groups without any spread and equal means
        return Welch(statistic, p_value, "no verdict (no spread across seeds)")
    return Welch(statistic, p_value)
