"""The verdict's calibration and the tests of many models at once.

- A/A: one configuration trained for real with six seeds, split into two pseudo-groups by a
  config key that changes nothing (`+aa=a` / `+aa=b`: a param, so two seed groups): compare must
  find no evidence, with an interval holding 0, and its p_value is Welch's on log test RMSE.
- MCS and SPA: what compare reports equals arch called directly on the same loss matrix (the
  runs' daily squared errors and naive's, read back from the store's predictions) with the same
  Politis–White blocks; SPA's studentization equals the variances arch's own SPA estimates, and
  finds a truly better model that a noisy one would hide unscaled; the MCS of configurations
  reads their seeds' averaged losses; the rule that bounds their cost picks the lowest val_rmse.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import MCS, SPA
from compare_store import ACTUAL, DAYS, NAIVE, Store, final_metrics
from mlflow import MlflowClient
from scipy import stats

from conftest import train_groups_in_own_store, use_store
from lstmlab.cli import main as cli_main
from lstmlab.comparison import forecasters
from lstmlab.comparison.compare import compare
from lstmlab.comparison.forecasters import block_length, long_run_sd, model_tests, studentized_spa_p
from lstmlab.comparison.verdict import verdict_head

pytestmark = pytest.mark.slow

SEEDS = {"a": (1, 2, 3), "b": (4, 5, 6)}


@pytest.fixture(scope="module")
def aa_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Six tiny runs of one configuration: seeds 1-3 tagged +aa=a, seeds 4-6 +aa=b."""
    return train_groups_in_own_store(tmp_path_factory.mktemp("aa"),
                                     {half: ([f"+aa={half}"], seeds) for half, seeds in SEEDS.items()})


def test_aa_two_groups_of_one_configuration_get_no_evidence_and_an_interval_holding_zero(aa_store, monkeypatch, capsys):
    use_store(aa_store["uri"], monkeypatch)
    result = compare()
    groups = result.groups.set_index("group")
    assert sorted(groups.index) == ["baseline (aa=a)", "baseline (aa=b)"]  # a param that changes nothing: two groups
    tested = groups[~groups["baseline_group"]].iloc[0]
    assert verdict_head(tested["verdict"]) in ("no evidence", "equivalent")
    assert tested["rmse_change_low"] < 0 < tested["rmse_change_high"]
    client = MlflowClient()
    rmse = {half: [client.get_run(i).data.metrics["test_rmse"] for i in ids] for half, ids in aa_store["ids"].items()}
    base_half = "b"  # the latest run tagged baseline=true is seed 6's
    assert result.baseline_run_id == aa_store["ids"][base_half][-1]
    expected = stats.ttest_ind(np.log(rmse["a"]), np.log(rmse["b"]), equal_var=False)
    assert tested["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert tested["t_statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert cli_main(["compare"]) == 0
    assert "baseline (aa=a)" in capsys.readouterr().out


def loss_matrix(store_ids: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The runs' daily squared errors and naive's, read back from each run's logged predictions.csv."""
    client = MlflowClient()
    columns = {}
    for run_id in store_ids:
        path = client.download_artifacts(run_id, "predictions.csv")
        table = pd.read_csv(path, index_col="date", parse_dates=True)
        columns[run_id] = (table["actual"] - table["predicted"]) ** 2
        naive = (table["actual"] - table["naive"]) ** 2
    return pd.DataFrame(columns), naive.rename("naive")


def many_runs(count: int) -> list[str]:
    """`count` runs of varied skill in this test's store (seed 1 each: every run its own group)."""
    store = Store()
    rng = np.random.default_rng(7)
    ids = []
    for k, scale in enumerate(np.r_[1.0, np.linspace(0.3, 3.0, count - 1)]):
        errors = scale * rng.normal(size=len(DAYS)) + 0.1 * (ACTUAL - NAIVE)
        ids.append(store.log("baseline" if k == 0 else f"v{k}", 1, final_metrics(scale + rng.uniform(0, 0.3), 1),
                             errors=errors))
    return ids


def politis_white(differences: pd.DataFrame) -> int:
    """The block length compare must use: arch's circular Politis–White lengths, median, rounded up."""
    from arch.bootstrap import optimal_block_length

    return int(np.ceil(np.median(np.ceil(optimal_block_length(differences.to_numpy())["circular"]))))


def test_mcs_and_spa_equal_arch_called_directly_on_the_same_loss_matrix():
    ids = many_runs(12)
    result = compare()
    losses, naive = loss_matrix(ids)
    block = politis_white(losses.rsub(naive, axis=0).join(losses.rsub(naive, axis=0), rsuffix="g"))
    mcs = MCS(losses.join(naive), size=0.05, reps=1000, block_size=block, method="max", bootstrap="mbb", seed=0)
    mcs.compute()
    differences = naive.to_numpy()[:, None] - losses.to_numpy()
    spa = SPA(np.zeros(len(naive)), -differences / long_run_sd(differences, block), block_size=block, reps=1000,
              bootstrap="mbb", seed=0)
    spa.compute()
    in_set = set(mcs.included)
    runs = result.runs.set_index("run_id")
    assert {run_id: bool(runs.loc[run_id, "in_mcs"]) for run_id in ids} == {run_id: run_id in in_set for run_id in ids}
    assert 0 < len(in_set - {"naive"}) < len(ids)  # the set tells some apart
    assert result.models.naive_in_mcs == ("naive" in in_set)
    assert result.models.spa_p == pytest.approx(float(spa.pvalues["consistent"]), abs=0)
    assert result.models.block == block and result.models.days == len(DAYS)
    # every run its own group here: the set of configurations is the set of runs
    groups = result.runs.set_index("run_id")["group"]
    assert {groups[r]: kept for r, kept in result.models.in_mcs.items()} == result.models.groups_in_mcs
    report = MlflowClient().search_runs([result.experiment_id], "tags.`lstmlab.report` = 'true'")
    assert not report  # compare() alone logs nothing; the command does
    assert cli_main(["compare"]) == 0
    tags = MlflowClient().search_runs([result.experiment_id], "tags.`lstmlab.report` = 'true'")[0].data.tags
    kept = [group for group, inside in result.models.groups_in_mcs.items() if inside]
    assert tags["compare.mcs"] == ", ".join([*kept, *(["naive"] if result.models.naive_in_groups_mcs else [])])
    assert tags["compare.spa_p"] == f"{float(spa.pvalues['consistent']):.4g}"


def test_the_studentized_spa_uses_arch_spas_own_variances_and_finds_a_model_a_noisy_one_would_hide():
    rng = np.random.default_rng(1)
    days = 500
    naive = pd.Series(rng.gamma(2.0, 1.0, size=days), name="naive")
    good = naive - 0.15 + 0.3 * rng.normal(size=days)  # truly better than naive, by a little, steadily
    noisy = naive + 12.0 * rng.normal(size=days)  # as good as naive on average, very noisy
    models = pd.DataFrame({"good": good, "noisy": noisy})
    block = 5
    arch_spa = SPA(naive, models, block_size=block, reps=1000, bootstrap="mbb", seed=0)
    arch_spa.compute()
    differences = naive.to_numpy()[:, None] - models.to_numpy()
    assert long_run_sd(differences, block) ** 2 == pytest.approx(arch_spa._loss_diff_var, rel=1e-10)  # arch's own estimate
    alone = studentized_spa_p(naive, models[["good"]], block)
    both = studentized_spa_p(naive, models, block)
    assert alone < 0.01 and both < 0.05  # studentized: the noisy model does not hide the good one
    assert float(arch_spa.pvalues["consistent"]) > 0.3  # arch's unscaled statistic: it does


def test_the_configurations_set_reads_each_ones_seed_averaged_loss_and_blocks_follow_the_errors_persistence():
    rng = np.random.default_rng(3)
    days = 300
    naive = pd.Series(rng.gamma(2.0, 1.0, size=days), name="naive")
    persistent = np.cumsum(rng.normal(size=(days, 4)), axis=0) * 0.05  # errors that last for weeks
    losses = pd.DataFrame(naive.to_numpy()[:, None] * [1.0, 1.02, 1.5, 1.55] + persistent ** 2,
                          columns=["a1", "a2", "b1", "b2"])
    validation = pd.Series({"a1": 1.0, "a2": 1.1, "b1": 2.0, "b2": 2.1})
    found = model_tests(losses, naive, validation, 0.05, groups={"a1": "a", "a2": "a", "b1": "b", "b2": "b"})
    averaged = pd.DataFrame({"a": losses[["a1", "a2"]].mean(axis=1), "b": losses[["b1", "b2"]].mean(axis=1)})
    block, (low, high) = block_length(losses.join(averaged).rsub(naive, axis=0))
    assert found.block == block > 5 and low <= block <= high
    mcs = MCS(averaged.join(naive), size=0.05, reps=1000, block_size=block, method="max", bootstrap="mbb", seed=0)
    mcs.compute()
    assert found.groups_in_mcs == {g: g in set(mcs.included) for g in ("a", "b")}
    assert found.naive_in_groups_mcs == ("naive" in set(mcs.included))
    white = model_tests(pd.DataFrame(rng.gamma(2.0, 1.0, size=(days, 2)), columns=["x", "y"]), naive,
                        pd.Series({"x": 1.0, "y": 2.0}), 0.05)
    assert white.block <= 3  # independent days: short blocks


def test_with_more_runs_than_the_bound_mcs_and_spa_take_those_with_the_lowest_val_rmse():
    rng = np.random.default_rng(1)
    losses = pd.DataFrame(rng.gamma(2.0, 1.0, size=(80, 6)) * [1.0, 0.9, 1.2, 0.8, 1.1, 1.3], columns=list("uvwxyz"))
    naive = pd.Series(rng.gamma(2.0, 1.0, size=80), name="naive")
    validation = pd.Series({"u": 3.0, "v": 1.0, "w": np.nan, "x": 5.0, "y": 2.0, "z": 4.0})
    found = model_tests(losses, naive, validation, 0.05, most=3)
    assert list(found.in_mcs) == ["v", "y", "u"] and found.candidates == 6  # lowest val_rmse first, NaN never
    chosen = losses[["v", "y", "u"]]
    block, _ = block_length(chosen.join(chosen, rsuffix=" (group)").rsub(naive, axis=0))
    assert found.block == block
    mcs = MCS(chosen.join(naive), size=0.05, reps=1000, block_size=block, method="max", bootstrap="mbb", seed=0)
    mcs.compute()
    assert found.in_mcs == {m: m in set(mcs.included) for m in ("v", "y", "u")}
    assert found.spa_p == studentized_spa_p(naive, chosen, block)
    lines = forecasters.describe(pd.DataFrame({"run_id": list("uvwxyz"), "group": list("uvwxyz")}), found, 0.05)
    assert "the 3 trained models with the lowest val_rmse (of 6; the rest not examined: in_mcs empty)" in lines[1]
    assert "the 3 with the lowest mean val_rmse of 6 configurations" in lines[0]
    assert forecasters.in_mcs_column(pd.Series(list("uvwx")), found).isna().tolist() == [False, False, True, True]
