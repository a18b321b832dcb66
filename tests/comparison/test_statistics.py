"""The verdict's statistics, checked where the answer is known: recomputed with scipy and
statsmodels, the interval's coverage on simulated A/A pools, a planted effect of the printed
`mde`, the probability of beating the baseline against its frequency, failed seeds, Holm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lstmlab.comparison import power
from lstmlab.comparison.seeds import seed_effect
from lstmlab.comparison.verdict import holm, judge, verdict_head, with_failures

ALPHA = 0.05


def lognormal(rng: np.random.Generator, n: int, sd: float = 0.1, scale: float = 20.0) -> np.ndarray:
    """`n` seeds' test RMSE: log-normal around `scale` with sd `sd` on the log scale."""
    return scale * np.exp(rng.normal(0.0, sd, size=n))


def test_the_effect_is_welchs_t_on_log_rmse_as_scipy_and_statsmodels_compute_it():
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    group, base = [61.0, 70.1, 283.6, 95.0], [69.7, 175.6, 117.9, 69.4]  # equal sizes: Welch as published
    found = seed_effect(group, base)
    a, b = np.log(group), np.log(base)
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert (found.statistic, found.p_value) == pytest.approx((expected.statistic, expected.pvalue), rel=1e-12)
    low, high = CompareMeans(DescrStatsW(a), DescrStatsW(b)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert (found.low, found.high) == pytest.approx((math.exp(low) - 1, math.exp(high) - 1), rel=1e-12)
    assert found.change == pytest.approx(stats.gmean(group) / stats.gmean(base) - 1, rel=1e-12)
    # the p-value and the interval are one test: p < 0.05 exactly when the interval excludes 0
    rng = np.random.default_rng(5)
    for _ in range(200):
        e = seed_effect(lognormal(rng, 4, scale=20 * math.exp(rng.normal(0, 0.1))), lognormal(rng, 5))
        assert (e.p_value < 0.05) == (not e.low <= 0 <= e.high)


def test_with_unequal_sizes_welchs_degrees_of_freedom_are_at_most_the_equal_variance_designs():
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    small, large = [20.0, 20.1, 19.9], [20.0, 26.0, 15.0, 22.0, 18.0, 24.0, 16.0, 21.0]  # a steady 3, a noisy 8
    a, b = np.log(small), np.log(large)
    statistic, _, welch_df = CompareMeans(DescrStatsW(a), DescrStatsW(b)).ttest_ind(usevar="unequal")
    design = (1 / 3 + 1 / 8) ** 2 / (1 / (9 * 2) + 1 / (64 * 7))
    assert welch_df > design and design == pytest.approx(3.63, abs=0.01)  # the cap is what applies here
    found = seed_effect(small, large)
    assert found.df == pytest.approx(design) and found.statistic == pytest.approx(statistic, rel=1e-12)
    assert found.p_value == pytest.approx(2 * stats.t.sf(abs(statistic), design), rel=1e-12)
    difference = a.mean() - b.mean()
    half = stats.t.ppf(0.975, design) * difference / statistic
    assert (found.low, found.high) == pytest.approx((math.expm1(difference - half), math.expm1(difference + half)))


def test_a_group_needs_two_finished_seeds_a_side_and_failed_values_are_not_averaged():
    one = seed_effect([1.0], [2.0, 2.1])
    assert one.missing == "no verdict (one finished seed; train with trainer.seed=1,2,3,...)"
    assert one.change == pytest.approx(1.0 / math.sqrt(2.0 * 2.1) - 1) and math.isnan(one.low)
    assert seed_effect([1.0, 1.1], [2.0]).missing.startswith("no verdict (the baseline has 1 finished seed")
    assert seed_effect([math.nan, math.inf], [2.0, 2.1]).missing.startswith("no verdict (no finished seed")
    with_nan = seed_effect([1.0, math.nan, 1.2], [2.0, 2.1, 1.9])
    assert with_nan.n == 2 and with_nan == seed_effect([1.0, 1.2], [2.0, 2.1, 1.9])


@pytest.mark.parametrize("sizes", [(3, 3), (5, 5), (10, 10), (3, 8)])
def test_the_interval_covers_the_truth_95_percent_of_the_time_on_simulated_aa_pools(sizes):
    """Two groups of one configuration: the 95 % interval must hold 0 in 93-97 % of 4,000 pools."""
    rng = np.random.default_rng(sum(sizes))
    pools = 4000
    held = 0
    for _ in range(pools):
        effect = seed_effect(lognormal(rng, sizes[0], sd=0.3), lognormal(rng, sizes[1], sd=0.3))
        held += effect.low <= 0 <= effect.high
    assert 0.93 <= held / pools <= 0.97


def test_power_mde_and_seeds_needed_equal_statsmodels():
    from statsmodels.stats.power import TTestIndPower

    analysis = TTestIndPower()
    for sd, n, n_base, alpha in [(0.1, 5, 5, 0.05), (0.3, 3, 8, 0.05), (0.05, 10, 10, 0.005), (0.68, 5, 5, 0.05)]:
        d = analysis.solve_power(nobs1=n, ratio=n_base / n, alpha=alpha, power=0.8)
        assert power.mde(sd, n, n_base, alpha) == pytest.approx(math.exp(d * sd) - 1, rel=1e-5)  # statsmodels' tolerance
        assert power.power(d * sd, sd, n, n_base, alpha) == pytest.approx(
            analysis.power(d, nobs1=n, ratio=n_base / n, alpha=alpha), rel=1e-9)
        needed = analysis.solve_power(effect_size=math.log1p(0.05) / sd, ratio=1.0, alpha=alpha, power=0.8)
        assert power.seeds_needed(sd, 0.05, alpha) == max(2, math.ceil(needed))
    for sd, alpha in [(0.2, 0.05), (0.2, 0.005), (0.614, 0.05), (0.614, 0.005)]:  # beyond LARGE seeds: Guenther
        needed = analysis.solve_power(effect_size=math.log1p(0.05) / sd, ratio=1.0, alpha=alpha, power=0.8)
        assert needed > power.LARGE and power.seeds_needed(sd, 0.05, alpha) == math.ceil(needed)
    assert math.isnan(power.mde(math.nan, 5, 5, 0.05)) and math.isnan(power.mde(0.1, 1, 5, 0.05))
    assert power.seeds_needed(1e-6, 0.05, 0.05) == 2 and power.seeds_needed(50.0, 0.01, 0.05) == power.MOST_SEEDS


def runs_frame(groups: dict[str, list[float]],
               failed: dict[str, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """What `judge` reads: the groups (the first is the baseline), one row per run with its test
    RMSE (`failed` runs per group appended with NaN and failed=True), and each run's group code."""
    rows = []
    for code, (name, values) in enumerate(groups.items()):
        rows += [{"code": code, "metrics.test_rmse": v, "failed": False} for v in values]
        rows += [{"code": code, "metrics.test_rmse": math.nan, "failed": True} for _ in range((failed or {}).get(name, 0))]
    runs = pd.DataFrame(rows)
    table = pd.DataFrame({"group": list(groups), "baseline_group": [True] + [False] * (len(groups) - 1)})
    return table, runs, runs["code"]


def test_a_planted_effect_of_the_printed_mde_is_found_70_to_90_percent_of_the_time():
    sd, n = 0.1, 5
    rng = np.random.default_rng(11)
    # seeds whose log sd is exactly `sd`: the printed mde is then what these seeds can detect
    unit = rng.normal(size=n)
    unit = (unit - unit.mean()) / unit.std(ddof=1)
    base = 20 * np.exp(sd * unit)
    groups, runs, codes = runs_frame({"baseline": base.tolist(), "variant": (base * 1.0).tolist()})
    printed = judge(groups, runs, codes, ALPHA).set_index("group").loc["variant", "mde"]
    assert printed == pytest.approx(power.mde(sd, n, n, ALPHA), rel=1e-9)
    found = 0
    trials = 2000
    for _ in range(trials):
        effect = seed_effect(lognormal(rng, n, sd) * (1 + printed), lognormal(rng, n, sd))
        found += effect.p_value < ALPHA and effect.change > 0
    assert 0.70 <= found / trials <= 0.90


def test_p_beats_is_the_chance_a_fresh_run_beats_a_fresh_baseline_run():
    rng = np.random.default_rng(2)
    group, base = lognormal(rng, 400, sd=0.2, scale=19.0), lognormal(rng, 400, sd=0.1, scale=20.0)
    estimated = seed_effect(group, base).p_beats
    fresh = np.mean(lognormal(rng, 200_000, sd=0.2, scale=19.0) < lognormal(rng, 200_000, sd=0.1, scale=20.0))
    assert estimated == pytest.approx(fresh, abs=0.03)
    # Mann-Whitney's U counts the pairs where the group's run is the higher one
    u = stats.mannwhitneyu(group, base).statistic / (len(group) * len(base))
    assert estimated == pytest.approx(1 - u, abs=0.04)  # the common-language effect size, without the normal model


@pytest.mark.parametrize(
    "groups, expected",
    [
        ({"baseline": [20.0, 20.4, 19.8, 20.1], "v": [15.0, 15.2, 14.9, 15.1]}, "better"),
        ({"baseline": [20.0, 20.4, 19.8, 20.1], "v": [25.0, 25.3, 24.8, 25.2]}, "worse"),
        ({"baseline": [20.0, 20.1, 19.9, 20.05], "v": [20.02, 20.1, 19.95, 20.0]}, "equivalent (within ±5%)"),
        ({"baseline": [20.0, 35.0, 12.0], "v": [22.0, 14.0, 30.0]}, "no evidence (smallest detectable effect"),
        ({"baseline": [20.0, 20.4, 19.8, 20.1], "v": [15.0]}, "no verdict (one finished seed"),
    ],
)
def test_the_verdict_reads_holms_p_the_interval_and_says_what_could_have_been_seen(groups, expected):
    table, runs, codes = runs_frame(groups)
    row = judge(table, runs, codes, ALPHA).set_index("group").loc["v"]
    assert row["verdict"].startswith(expected)
    if expected == "better":
        assert row["rmse_change_high"] < 0 and row["welch_p_holm"] < ALPHA


def test_holm_over_several_groups_turns_a_lone_small_p_into_no_evidence_and_says_so():
    rng = np.random.default_rng(4)
    base = [20.0, 20.4, 19.8, 20.1, 20.2]
    lucky = [1.02 * v for v in (20.3, 20.0, 20.1, 19.9, 20.4)]  # p 0.012 alone
    groups = {"baseline": base, "lucky": lucky, **{f"v{k}": (20.1 * np.exp(rng.normal(0, 0.3, 5))).tolist() for k in range(9)}}
    table = judge(*runs_frame(groups), ALPHA, margin=0.01).set_index("group")  # +2 %: not within ±1 %
    row = table.loc["lucky"]
    assert row["p_value"] < ALPHA <= row["welch_p_holm"]
    assert row["verdict"].startswith(f"no evidence (p {row['p_value']:.2g}, {row['welch_p_holm']:.2g} after Holm over 10 groups")
    assert table["welch_p_holm"].dropna().tolist() == pytest.approx(
        [p for p in holm(table["p_value"].tolist()) if not math.isnan(p)])
    # every mde plans for Holm's strictest step, alpha / 10
    v0 = table.loc["v0"]
    assert v0["mde"] == pytest.approx(power.mde(v0["sd_log"], 5, 5, ALPHA / 10), rel=1e-9)


def test_a_group_with_failed_seeds_shows_them_and_is_never_plainly_better_on_its_survivors():
    groups = {"baseline": [20.0, 20.4, 19.8, 20.1, 20.2], "unstable": [15.0, 15.2, 14.9]}
    table = judge(*runs_frame(groups, failed={"unstable": 2}), ALPHA).set_index("group")
    row = table.loc["unstable"]
    assert row["failed"] == "2/5" and table.loc["baseline", "failed"] == "0/5"
    assert verdict_head(row["verdict"]) == "better" and row["verdict"] != "better"
    fisher = stats.fisher_exact([[2, 3], [0, 5]])[1]
    assert row["verdict"] == (f"better (2/5 seeds failed: judged on the 3 that finished; failure rate 40% vs the "
                              f"baseline's 0% (Fisher p {fisher:.2g}))")
    assert row["failure_p"] == pytest.approx(fisher)
    all_failed = judge(*runs_frame({"baseline": [20.0, 20.4], "gone": []}, failed={"gone": 3}), ALPHA)
    assert all_failed.set_index("group").loc["gone", "verdict"].startswith("no verdict (all 3 seeds failed")


def test_the_failure_line_keeps_the_reason_it_is_added_to():
    text = with_failures("no evidence (smallest detectable effect 4.0%)", 1, 5, 0, 5, 1.0)
    assert text == ("no evidence (1/5 seeds failed: judged on the 4 that finished; failure rate 20% vs the baseline's "
                    "0% (Fisher p 1); smallest detectable effect 4.0%)")
    assert with_failures("worse", 0, 5, 1, 5, 1.0) == "worse"


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
