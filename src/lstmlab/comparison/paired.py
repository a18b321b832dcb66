"""Paired evidence over test days: Diebold–Mariano (HLN-corrected), Holm, and the effect's interval.

Two groups of runs forecast the same T test days. Per day t, each group's loss is the mean over
its seeds of the squared error (actual_t − predicted_t)²; the loss differential is
d_t = loss_group(t) − loss_baseline(t) (d > 0: the group erred more).

- Diebold–Mariano: DM = mean(d) / sqrt(S / T), S the Newey–West long-run variance of d
  (Bartlett weights 1 − l/(L+1), L = floor(T^(1/3)) lags, autocovariances over T);
  Harvey–Leybourne–Newbold correction for one-step forecasts (h = 1): DM · sqrt((T − 1) / T);
  two-sided p from Student's t with T − 1 degrees of freedom.
- Holm's step-down adjustment over every p-value of one report.
- Effect: relative change in test RMSE over the paired days, sqrt(mean loss_group / mean
  loss_baseline) − 1, with a 95 % moving-block bootstrap interval over days (blocks of
  ceil(T^(1/3)) days, the same order as the lags: long enough to keep the short-range
  dependence of daily errors inside a block; fixed seed, so a report is reproducible).

Pure numpy/scipy, so it can be tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class DieboldMariano:
    """The HLN-corrected DM statistic of mean(d) and its two-sided p-value; NaN when d has no spread."""

    statistic: float
    p_value: float
    days: int
    lags: int


def lags_for(days: int) -> int:
    """L = floor(T^(1/3)); computed in integers so that 27 days give 3 lags, not 2."""
    lags = round(days ** (1 / 3))
    return lags if lags**3 <= days else lags - 1


def newey_west(d: np.ndarray, lags: int) -> float:
    """Long-run variance of d: γ0 + 2 Σ_{l=1..L} (1 − l/(L+1)) γl, γl = Σ_t (d_t − d̄)(d_{t−l} − d̄) / T.

    Written out because it is five lines and the issue fixes the exact formula; statsmodels'
    HAC covariance (the same Bartlett kernel) is what the tests check it against.
    """
    centred = np.asarray(d, dtype=float) - np.mean(d)
    days = centred.size
    variance = float(centred @ centred) / days
    for lag in range(1, min(lags, days - 1) + 1):
        variance += 2 * (1 - lag / (lags + 1)) * float(centred[lag:] @ centred[:-lag]) / days
    return variance


def diebold_mariano(d: Sequence[float] | np.ndarray) -> DieboldMariano:
    """DM test of mean(d) = 0 for one-step forecasts, HLN-corrected, p from t(T − 1)."""
    d = np.asarray(d, dtype=float)
    days = d.size
    lags = lags_for(days) if days else 0
    if days < 3:
        return DieboldMariano(math.nan, math.nan, days, lags)
    variance = newey_west(d, lags)
    if not variance > 0:  # identical losses every day (e.g. the same forecasts): nothing to test
        return DieboldMariano(math.nan, math.nan, days, lags)
    statistic = float(np.mean(d)) / math.sqrt(variance / days) * math.sqrt((days - 1) / days)
    p_value = float(2 * stats.t.sf(abs(statistic), df=days - 1))
    return DieboldMariano(statistic, p_value, days, lags)


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


def block_length(days: int) -> int:
    """Moving-block length: ceil(T^(1/3)) days."""
    length = lags_for(days)
    return max(1, length if length**3 == days else length + 1)


def relative_rmse_change(loss: np.ndarray, base_loss: np.ndarray) -> float:
    """sqrt(mean loss / mean base loss) − 1: the change in RMSE over the same days."""
    return math.sqrt(float(np.mean(loss)) / float(np.mean(base_loss))) - 1


def effect_interval(
    loss: Sequence[float] | np.ndarray,
    base_loss: Sequence[float] | np.ndarray,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """The relative RMSE change and its percentile interval from a moving-block bootstrap over days.

    Days are resampled in blocks of `block_length(T)` consecutive days, the same blocks for both
    groups (the pairing is kept), until T days are drawn.
    """
    loss, base_loss = np.asarray(loss, dtype=float), np.asarray(base_loss, dtype=float)
    days = loss.size
    if days == 0 or not np.mean(base_loss) > 0:
        return math.nan, math.nan, math.nan
    estimate = relative_rmse_change(loss, base_loss)
    length = block_length(days)
    blocks = math.ceil(days / length)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, days - length + 1, size=(replicates, blocks))
    index = (starts[:, :, None] + np.arange(length)).reshape(replicates, -1)[:, :days]
    ratios = loss[index].mean(axis=1) / base_loss[index].mean(axis=1)
    low, high = np.quantile(np.sqrt(ratios) - 1, [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(low), float(high)

