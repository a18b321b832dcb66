"""The arithmetic of the paired days: the effect on test RMSE with its two-level interval, Holm,
Welch and the verdict rule. Each number is recomputed here the slow, obvious way (a loop over
replicates that resamples seeds and days as the module's docstring says; statsmodels for Holm;
scipy for Welch)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from arch.bootstrap import MovingBlockBootstrap

from lstmlab.comparison import effect as effects
from lstmlab.comparison.effect import DayDraws, block_length, effect
from lstmlab.comparison.seeds import welch
from lstmlab.comparison.verdict import holm, verdict


def two_level_by_hand(loss: np.ndarray, base_loss: np.ndarray, replicates: int = effects.REPLICATES) -> tuple:
    """The documented bootstrap, one replicate at a time: arch's moving blocks of days (seed 0);
    the seeds of each group drawn with replacement (numpy, seed 1: the group's draws for every
    replicate, then the baseline's); the RMSE change of the drawn seeds on the drawn days."""
    days = loss.shape[0]
    blocks = MovingBlockBootstrap(block_length(days), np.arange(days), seed=effects.DAYS_SEED)
    day_index = [drawn[0] for drawn, _ in blocks.bootstrap(replicates)]
    generator = np.random.default_rng(effects.SEEDS_SEED)
    group_seeds = generator.integers(0, loss.shape[1], size=(replicates, loss.shape[1]))
    base_seeds = generator.integers(0, base_loss.shape[1], size=(replicates, base_loss.shape[1]))
    changes = [math.sqrt(loss[np.ix_(day_index[r], group_seeds[r])].mean()
                         / base_loss[np.ix_(day_index[r], base_seeds[r])].mean()) - 1 for r in range(replicates)]
    low, high = np.quantile(changes, [0.025, 0.975])
    return float(low), float(high)


def seed_losses(days: int, runs: int, spread: float, level: float, seed: int) -> np.ndarray:
    """Squared errors of `runs` seeds on `days` days (the same days, with the same hard and easy
    stretches, for every `seed`): each seed's model scales them by its own factor (it is off on
    every day at once), `spread` wide."""
    daily = np.random.default_rng(0).gamma(2.0, 1.0, size=(days, 1)) * (1 + 0.5 * np.sin(np.arange(days) / 9))[:, None]
    noise = np.random.default_rng(seed).gamma(20.0, 0.05, size=(days, runs))  # each model's own day-to-day luck
    return level * daily * noise * (1 + spread * np.random.default_rng(seed).uniform(-1, 1, size=(1, runs)))


def test_the_two_level_interval_equals_the_bootstrap_done_replicate_by_replicate():
    loss, base = seed_losses(120, 4, 0.3, 1.2, seed=1), seed_losses(120, 3, 0.3, 1.0, seed=2)
    found = effect(loss, base)
    assert found.change == pytest.approx(math.sqrt(loss.mean() / base.mean()) - 1, rel=1e-12)
    assert (found.low, found.high) == pytest.approx(two_level_by_hand(loss, base), rel=1e-12)
    assert found.low < found.change < found.high
    assert effect(loss, base) == found  # fixed seeds: the same interval every time
    assert block_length(120) == 5 and block_length(503) == 8 and block_length(27) == 3 and block_length(28) == 4


def test_seeds_that_agree_exactly_give_the_days_only_interval():
    days = seed_losses(250, 1, 0.0, 1.0, seed=3)
    group, base = np.repeat(days * 1.1, 5, axis=1), np.repeat(days, 4, axis=1)  # every seed the same predictions
    same_seeds = effect(group, base)
    days_only = effect(group[:, :1], base[:, :1])  # one run a side: the days alone are resampled
    assert same_seeds.change == pytest.approx(days_only.change, rel=1e-12)
    assert (same_seeds.low, same_seeds.high) == pytest.approx((days_only.low, days_only.high), rel=1e-12)
    # and that is the moving-block interval over days of the seed-averaged loss, replicate by replicate
    assert (days_only.low, days_only.high) == pytest.approx(two_level_by_hand(group[:, :1], base[:, :1]), rel=1e-12)


def test_the_interval_widens_with_the_spread_of_the_seeds():
    widths = []
    for spread in (0.0, 0.1, 0.3, 0.6):
        found = effect(seed_losses(250, 4, spread, 1.0, seed=4), seed_losses(250, 4, spread, 1.0, seed=5))
        widths.append(found.high - found.low)
    assert widths == sorted(widths) and widths[-1] > 3 * widths[0], widths


def test_day_draws_are_counts_of_arch_moving_blocks():
    draws = DayDraws(30, replicates=50)
    blocks = MovingBlockBootstrap(block_length(30), np.arange(30), seed=effects.DAYS_SEED)
    for row, (drawn, _) in zip(draws.counts, blocks.bootstrap(50)):
        assert row.tolist() == np.bincount(drawn[0], minlength=30).tolist()
    assert (draws.counts.sum(axis=1) == 30).all()


@pytest.mark.slow
def test_holm_equals_statsmodels_and_the_step_down_by_hand():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04, 0.2 × 5, 4, 3, 2, 1 = 0.025, 0.04, 0.09, 0.08 → 0.09 (monotone), 0.2
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2, 0.025], rel=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist(), rel=1e-12)
    with_nan = holm([0.01, math.nan, 0.02])  # a group without a test is not counted
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.02)


@pytest.mark.parametrize(
    "t, p_holm, low, high, expected",
    [
        (-3.0, 0.01, -0.30, -0.10, "better"),
        (3.0, 0.01, 0.10, 0.30, "worse"),
        (-3.0, 0.20, -0.30, 0.05, "no evidence"),
        (-3.0, 0.01, -0.30, 0.05, "no evidence (Welch says better; the interval holds 0)"),
        (3.0, 0.20, 0.10, 0.30, "no evidence (the interval says worse; Welch p* ≥ 0.05)"),
        (-3.0, 0.01, 0.10, 0.30, "no evidence (Welch and the interval point opposite ways)"),
        (-3.0, 0.01, math.nan, math.nan, "no evidence (Welch says better; the interval holds 0)"),
        (-3.0, math.nan, -0.30, -0.10, "no evidence (the interval says better; Welch p* ≥ 0.05)"),
    ],
)
def test_the_verdict_needs_welch_and_the_interval_in_the_same_direction(t, p_holm, low, high, expected):
    assert verdict(t, p_holm, low, high, 0.05) == expected


def test_welch_is_scipys_and_needs_two_runs_a_side():
    from scipy import stats

    group, base = [61.0, 70.1, 283.6], [69.7, 175.6, 117.9, 69.4]
    expected = stats.ttest_ind(group, base, equal_var=False)
    found = welch(group, base)
    assert (found.statistic, found.p_value) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    assert welch([1.0], [2.0, 2.1]).missing == "no verdict (one run; train with trainer.seed=1,2,3,...)"
    assert welch([1.0, 1.1], [2.0]).missing.startswith("no verdict (baseline has one run")


def test_groups_are_paired_on_the_days_all_their_runs_forecast():
    from dataclasses import astuple

    import pandas as pd

    from lstmlab.comparison.verdict import PairedDays

    loss = seed_losses(90, 5, 0.2, 1.0, seed=6)
    losses = pd.DataFrame(loss, columns=["a1", "a2", "b1", "b2", "c1"])
    losses.iloc[:30, 2] = np.nan  # b1 forecast only the last 60 days
    paired = PairedDays(losses, {"gone": "missing"})
    days, found, why = paired.compare(["a1", "a2"], ["c1"])
    assert (days, why) == (90, None)
    assert astuple(found) == pytest.approx(astuple(effect(loss[:, :2], loss[:, 4:])), rel=1e-12)  # means computed once
    days, found, why = paired.compare(["b1", "b2"], ["c1"])
    assert (days, why) == (60, None)
    assert astuple(found) == pytest.approx(astuple(effect(loss[30:, 2:4], loss[30:, 4:])), rel=1e-12)
    days, found, why = paired.compare(["a1", "gone"], ["c1"])
    assert days == 0 and why == "no verdict (run gone: predictions.csv missing)" and math.isnan(found.change)
