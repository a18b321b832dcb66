"""The paired test's arithmetic on known series: Diebold–Mariano with Newey–West and the HLN
correction, Holm, the block bootstrap. Each number is recomputed here from the textbook formula
(and checked against statsmodels, an independent implementation installed with `arch`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lstmlab.comparison import paired, stats


def textbook_dm(d: np.ndarray) -> tuple[float, float]:
    """DM = d̄ / sqrt(S/T), S = γ0 + 2 Σ_{l=1}^{L} (1 − l/(L+1)) γl with γl = (1/T) Σ_{t>l} (d_t − d̄)(d_{t−l} − d̄),
    L = ⌊T^{1/3}⌋; HLN: × sqrt((T − 1)/T); p = 2 P(t_{T−1} > |DM|)."""
    T = len(d)
    L = int(math.floor(T ** (1 / 3) + 1e-12))
    mean = sum(d) / T
    gamma = [sum((d[t] - mean) * (d[t - lag] - mean) for t in range(lag, T)) / T for lag in range(L + 1)]
    S = gamma[0] + 2 * sum((1 - lag / (L + 1)) * gamma[lag] for lag in range(1, L + 1))
    dm = mean / math.sqrt(S / T) * math.sqrt((T - 1) / T)
    return dm, 2 * scipy_stats.t.sf(abs(dm), T - 1)


def test_a_hand_computed_small_case():
    # T = 8, L = 2 (8^(1/3) = 2 exactly). d = 1,0,1,0,1,0,1,0: d̄ = 1/2, every deviation ±1/2, alternating.
    # γ0 = 8·(1/4)/8 = 1/4; γ1 = 7·(−1/4)/8 = −7/32; γ2 = 6·(1/4)/8 = 3/16.
    # S = 1/4 + 2·(2/3)·(−7/32) + 2·(1/3)·(3/16) = 1/4 − 7/24 + 1/8 = 1/12.
    # DM = (1/2) / sqrt((1/12)/8) · sqrt(7/8) = (1/2)·sqrt(96)·sqrt(7/8) = sqrt(21).
    d = np.array([1, 0, 1, 0, 1, 0, 1, 0], dtype=float)
    assert paired.lags_for(8) == 2
    assert paired.newey_west(d, 2) == pytest.approx(1 / 12, rel=1e-12)
    result = paired.diebold_mariano(d)
    assert result.statistic == pytest.approx(math.sqrt(21), rel=1e-12)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(math.sqrt(21), 7), rel=1e-12)
    assert (result.days, result.lags) == (8, 2)


@pytest.mark.parametrize("days", [5, 26, 27, 64, 250, 1000])
def test_dm_equals_the_textbook_formula_and_statsmodels_hac(days):
    rng = np.random.default_rng(days)
    noise = rng.normal(size=days + 1)
    d = 0.15 + noise[1:] + 0.6 * noise[:-1]  # MA(1): autocorrelated, as daily loss differentials are
    expected_dm, expected_p = textbook_dm(d)
    result = paired.diebold_mariano(d)
    assert result.lags == int(math.floor(days ** (1 / 3) + 1e-12))
    assert result.statistic == pytest.approx(expected_dm, rel=1e-10)
    assert result.p_value == pytest.approx(expected_p, rel=1e-9)

    import statsmodels.api as sm  # HAC standard error of the mean: sqrt(S/T), Bartlett kernel

    fit = sm.OLS(d, np.ones(days)).fit(cov_type="HAC", cov_kwds={"maxlags": result.lags, "use_correction": False})
    assert paired.newey_west(d, result.lags) / days == pytest.approx(fit.bse[0] ** 2, rel=1e-10)


def test_dm_has_no_answer_without_spread_or_days():
    assert math.isnan(paired.diebold_mariano(np.zeros(30)).p_value)
    assert math.isnan(paired.diebold_mariano([1.0, 2.0]).statistic)


def test_holm_equals_statsmodels_and_the_step_down_by_hand():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04, 0.2 × 5, 4, 3, 2, 1 = 0.025, 0.04, 0.09, 0.08 → 0.09 (monotone), 0.2
    assert paired.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.2, 0.025], rel=1e-12)
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 12))
        assert paired.holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist(), rel=1e-12)
    with_nan = paired.holm([0.01, math.nan, 0.02])  # a group without a test is not counted
    assert with_nan[0] == pytest.approx(0.02) and math.isnan(with_nan[1]) and with_nan[2] == pytest.approx(0.02)


def test_the_bootstrap_interval_holds_the_estimate_and_is_seeded():
    rng = np.random.default_rng(7)
    base = rng.gamma(2.0, 1.0, size=300)
    loss = base * 1.3 + rng.gamma(1.0, 0.2, size=300)
    estimate, low, high = paired.effect_interval(loss, base)
    assert estimate == pytest.approx(math.sqrt(loss.mean() / base.mean()) - 1, rel=1e-12)
    assert low < estimate < high
    assert paired.effect_interval(loss, base) == (estimate, low, high)  # the same seed, the same interval
    other = paired.effect_interval(loss, base, seed=1)
    assert other[0] == estimate and other[1:] != (low, high)
    assert paired.block_length(300) == 7 and paired.block_length(343) == 7 and paired.block_length(27) == 3


@pytest.mark.parametrize(
    "welch_t, welch_p, dm, dm_p, metric, verdict",
    [
        (-3.0, 0.01, -2.5, 0.02, "val_rmse", "better"),
        (3.0, 0.01, 2.5, 0.02, "val_rmse", "worse"),
        (-3.0, 0.01, -2.5, 0.20, "val_rmse", "no evidence"),  # the days do not confirm the seeds
        (-3.0, 0.20, -2.5, 0.01, "val_rmse", "no evidence"),  # the seeds do not confirm the days
        (-3.0, 0.01, 2.5, 0.01, "val_rmse", "no evidence (seeds and days disagree)"),
        (3.0, 0.01, -2.5, 0.01, "test_skill", "better"),  # higher skill is better, lower errors too
        (-3.0, 0.01, -2.5, math.nan, "val_rmse", "no evidence"),
    ],
)
def test_the_verdict_needs_both_tests_below_alpha_and_in_the_same_direction(welch_t, welch_p, dm, dm_p, metric, verdict):
    assert stats.verdict(welch_t, welch_p, dm, dm_p, metric, 0.05) == verdict


def test_one_seed_gets_no_verdict_whatever_the_days_say():
    assert stats.welch([1.0], [2.0, 2.1]).missing == "no verdict (one run; train with trainer.seed=1,2,3,...)"
    assert stats.welch([1.0, 1.1], [2.0]).missing.startswith("no verdict (baseline has one run")
