"""The effect of a configuration on test RMSE, with an interval that resamples seeds and days.

The effect of a group against the baseline group is the relative change of test RMSE over the T
days both forecast: sqrt(mean loss_group / mean loss_baseline) − 1, a group's daily loss being the
squared error averaged over its seeds (training runs).

Its 95 % interval comes from a two-level bootstrap, because a configuration is replicated by
training runs and its test days by the market: each replicate draws the seeds of each group
again (with replacement, within the group), then moving blocks of the T days (blocks of
⌈T^(1/3)⌉ consecutive days, the same blocks for both groups, so the pairing is kept), and the
percentile interval of the replicates' effects is reported (2,000 replicates).

The two levels draw from separate generators with fixed seeds: the days from arch's
`MovingBlockBootstrap` (seed 0), the seeds from a numpy Generator (seed 1). So a report is
reproducible, every group meets the same day blocks, and when every seed of both groups gives
exactly the same predictions the seed draws change nothing and the interval is the days-only
moving-block interval (what a group of one run gets); the more the seeds differ, the wider it is.

Written here rather than taken whole from arch: arch's bootstraps resample the rows of the arrays
they are given with one index per replicate (one level: `MovingBlockBootstrap` for days,
`IIDBootstrap`/`IndependentSamplesBootstrap` for independent samples). None nests the levels:
seeds drawn within each group (groups of different sizes, each on its own), then day blocks
shared by both groups across those draws. So arch draws the day blocks, and the seed draws and
the arithmetic that joins them are the few lines below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REPLICATES = 2000
DAYS_SEED = 0  # arch's moving-block draws of the days
SEEDS_SEED = 1  # the draws of training runs within each group
LEVEL = 0.95


def block_length(days: int) -> int:
    """Moving-block length: ⌈T^(1/3)⌉ days (8 for the 503 test days of the S&P 500 holdout), the
    usual order for a block bootstrap of a mean; in integers, so that 27 days give 3."""
    length = round(days ** (1 / 3))
    return max(1, length if length**3 >= days else length + 1)


@dataclass(frozen=True)
class Effect:
    change: float  # relative change of test RMSE over the paired days
    low: float
    high: float


class DayDraws:
    """The moving-block draws of T days, as counts: `counts[r, t]` is how often replicate r drew
    day t. Made once per T and shared by every group of a report."""

    def __init__(self, days: int, replicates: int = REPLICATES) -> None:
        from arch.bootstrap import MovingBlockBootstrap

        self.days, self.block = days, block_length(days)
        bootstrap = MovingBlockBootstrap(self.block, np.arange(days), seed=DAYS_SEED)
        index = np.stack([drawn[0] for drawn, _ in bootstrap.bootstrap(replicates)])
        rows = np.repeat(np.arange(replicates), days)
        self.counts = np.bincount(rows * days + index.ravel(), minlength=replicates * days).reshape(replicates, days)

    def means(self, losses: np.ndarray) -> np.ndarray:
        """Each replicate's mean over its drawn days of each column of `losses` (T × runs)."""
        return self.counts @ losses / self.days


def seed_weights(generator: np.random.Generator, replicates: int, runs: int) -> np.ndarray:
    """Each replicate's draw of `runs` seeds with replacement, as the share of each run (rows sum to 1)."""
    drawn = generator.integers(0, runs, size=(replicates, runs))
    counts = np.bincount((np.arange(replicates)[:, None] * runs + drawn).ravel(), minlength=replicates * runs)
    return counts.reshape(replicates, runs) / runs


def relative_change(loss: np.ndarray, base_loss: np.ndarray) -> float:
    """sqrt(mean loss / mean base loss) − 1: the change in RMSE over the same days."""
    return math.sqrt(float(np.mean(loss)) / float(np.mean(base_loss))) - 1


def effect(loss: np.ndarray, base_loss: np.ndarray, draws: DayDraws | None = None,
           day_means: tuple[np.ndarray, np.ndarray] | None = None) -> Effect:
    """The effect of a group (`loss`: its runs' squared errors, T days × runs) against the
    baseline group (`base_loss`, T × runs) with its two-level interval. `draws`: the DayDraws of
    T days (made when not given); `day_means`: both groups' `draws.means`, when already known."""
    loss, base_loss = np.asarray(loss, dtype=float), np.asarray(base_loss, dtype=float)
    if loss.size == 0 or not np.mean(base_loss) > 0:
        return Effect(math.nan, math.nan, math.nan)
    draws = draws or DayDraws(loss.shape[0])
    group_means, base_means = day_means or (draws.means(loss), draws.means(base_loss))
    replicates = group_means.shape[0]
    generator = np.random.default_rng(SEEDS_SEED)  # afresh per group: its interval is its own
    group = np.sum(seed_weights(generator, replicates, loss.shape[1]) * group_means, axis=1)
    base = np.sum(seed_weights(generator, replicates, base_loss.shape[1]) * base_means, axis=1)
    low, high = np.quantile(np.sqrt(group / base) - 1, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Effect(relative_change(loss, base_loss), float(low), float(high))
