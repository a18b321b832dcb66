"""The effect of a configuration across its seeds: one estimand, one interval, one test.

A configuration is replicated by training runs (seeds), so its effect is measured across them.
The estimand is the ratio of a group's test RMSE to the baseline group's, as geometric means over
seeds: exp(mean log RMSE − mean log RMSE of the baseline); `change` is that ratio − 1. On the log
scale the seeds' spread is a share of the RMSE (a model 10 % off is 10 % off whatever the price
level), and the worst seed does not dominate as it does in a mean of RMSEs or of squared errors.

Its 95 % interval is Welch's t-interval for the difference of mean log test RMSE (unequal
variances: a variant may be steadier or noisier than the baseline), and `p_value` is the same
t-test's, so the two can never disagree: p < 0.05 exactly when the interval excludes 0. Its
degrees of freedom are Welch–Satterthwaite's, at most what the same formula gives for equal
variances (`design_df`): with 3 seeds on one side, the sample variances are too noisy to be
trusted for the degrees of freedom too, and uncapped Welch rejects a true null 6 % of the time
for 3 seeds against 8 (simulated; 3.6 % capped; unchanged for equal group sizes). Its coverage is
shown on A/A splits of real and simulated seeds (benchmarks/aa_calibration.py, docs/evidence.md),
not assumed.

With walk-forward, a run's test RMSE pools its folds' test days; every run forecasts the same
days, so what the days do to every configuration alike cancels in the ratio, and the seeds stay
the unit of replication. The interval therefore speaks of these test days: another market period
is another question (the folds' own ratios and the model tests over days speak to it).

By hand rather than scipy's `ttest_ind(..., equal_var=False)` alone: scipy gives the statistic
and p but neither the interval's half-width nor the degrees of freedom the power analysis needs
(comparison.power); the tests check both against scipy and statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TESTED_METRIC = "test_rmse"  # the metric the verdict reads, whatever --metric sorts by
MORE_SEEDS = "train with trainer.seed=1,2,3,..."
LEVEL = 0.95


@dataclass(frozen=True)
class SeedEffect:
    """One group against the baseline group, on the log test RMSE of their finite seeds.

    `missing` says why there is no test ("no verdict (...)"); the numbers are then NaN where
    they cannot be computed (a group of one seed still has its change, but no interval)."""

    n: int  # the group's seeds with a finite test RMSE
    n_base: int  # the baseline group's
    change: float  # geometric-mean ratio − 1
    low: float  # the interval of `change`
    high: float
    statistic: float  # Welch's t of (group − baseline) on log RMSE
    df: float  # Welch–Satterthwaite degrees of freedom
    p_value: float  # two-sided
    sd_log: float  # pooled seed-to-seed sd of log RMSE (the noise the power analysis plans with)
    p_beats: float  # probability that a fresh run of the group has a lower test RMSE than a fresh baseline run
    missing: str | None = None


LARGEST = 1.7976931348623157e308  # how MLflow's stores keep an infinite metric


def finite_logs(values: Sequence[float]) -> np.ndarray:
    """log of the finite, positive values (a test RMSE of 0, NaN or inf is no run to average)."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    return np.log(array[(array < LARGEST) & (array > 0)])


def seed_effect(group: Sequence[float], baseline: Sequence[float], level: float = LEVEL) -> SeedEffect:
    """The effect of `group` (its runs' test RMSE) against `baseline` (the baseline group's)."""
    a, b = finite_logs(group), finite_logs(baseline)
    change = math.exp(a.mean() - b.mean()) - 1 if a.size and b.size else math.nan
    nothing = dict(low=math.nan, high=math.nan, statistic=math.nan, df=math.nan, p_value=math.nan)
    if b.size < 2:
        seeds = f"{b.size} finished seed{'s' if b.size != 1 else ''}"
        return SeedEffect(a.size, b.size, change, **nothing, sd_log=pooled_sd(a, b), p_beats=math.nan,
                          missing=f"no verdict (the baseline has {seeds}; {MORE_SEEDS})")
    if a.size < 2:
        why = "no finished seed" if a.size == 0 else "one finished seed"
        return SeedEffect(a.size, b.size, change, **nothing, sd_log=pooled_sd(a, b), p_beats=math.nan,
                          missing=f"no verdict ({why}; {MORE_SEEDS})")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    difference, se = a.mean() - b.mean(), math.sqrt(va + vb)
    spread = math.sqrt(a.var(ddof=1) + b.var(ddof=1))
    p_beats = float(stats.norm.cdf(-difference / spread)) if spread > 0 else (0.5 if difference == 0 else float(difference < 0))
    if se == 0:  # every seed of both groups gave the same RMSE: nothing to test against
        return SeedEffect(a.size, b.size, change, **nothing, sd_log=0.0, p_beats=p_beats,
                          missing="no verdict (no spread across seeds)")
    df = min((va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)), design_df(a.size, b.size))
    half = stats.t.ppf((1 + level) / 2, df) * se
    statistic = difference / se
    return SeedEffect(
        n=a.size, n_base=b.size, change=change,
        low=math.exp(difference - half) - 1, high=math.exp(difference + half) - 1,
        statistic=statistic, df=df, p_value=float(2 * stats.t.sf(abs(statistic), df)),
        sd_log=pooled_sd(a, b), p_beats=p_beats,
    )


def design_df(n: int, n_base: int) -> float:
    """Welch–Satterthwaite's degrees of freedom for groups of these sizes with equal variances
    (2n − 2 for equal sizes; 3.6 for 3 against 8)."""
    return (1 / n + 1 / n_base) ** 2 / (1 / (n**2 * (n - 1)) + 1 / (n_base**2 * (n_base - 1)))


def pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    """The pooled sample sd of two groups' log RMSE (NaN without two values in one of them)."""
    dof = max(a.size - 1, 0) + max(b.size - 1, 0)
    if dof == 0:
        return math.nan
    squares = (a.var(ddof=1) * (a.size - 1) if a.size > 1 else 0.0) + (b.var(ddof=1) * (b.size - 1) if b.size > 1 else 0.0)
    return math.sqrt(squares / dof)


def summary(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for one value) and n of finite values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, 0
    sd = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
    return float(np.mean(finite)), sd, int(finite.size)
