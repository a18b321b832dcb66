"""The verdict's calibration and the tests of many models at once.

- A/A: one configuration trained for real with six seeds, split into two pseudo-groups by a
  config key that changes nothing (`+aa=a` / `+aa=b`: a param, so two seed groups): compare must
  find no evidence, with an interval holding 0, and its p_value is Welch's on test RMSE.
- MCS and SPA: what compare reports equals arch called directly on the same loss matrix (the
  runs' daily squared errors and naive's, read back from the store's predictions), and the rule
  that bounds their cost picks the runs with the lowest val_rmse.
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
from lstmlab.comparison.effect import block_length
from lstmlab.comparison.forecasters import model_tests
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
    assert verdict_head(tested["verdict"]) == "no evidence" and tested["verdict"] == "no evidence"
    assert tested["rmse_change_low"] < 0 < tested["rmse_change_high"]
    client = MlflowClient()
    rmse = {half: [client.get_run(i).data.metrics["test_rmse"] for i in ids] for half, ids in aa_store["ids"].items()}
    base_half = "b"  # the latest run tagged baseline=true is seed 6's
    assert result.baseline_run_id == aa_store["ids"][base_half][-1]
    expected = stats.ttest_ind(rmse["a"], rmse["b"], equal_var=False)
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


def test_mcs_and_spa_equal_arch_called_directly_on_the_same_loss_matrix():
    ids = many_runs(12)
    result = compare()
    losses, naive = loss_matrix(ids)
    block = block_length(len(DAYS))
    mcs = MCS(losses.join(naive), size=0.05, reps=1000, block_size=block, method="max", bootstrap="mbb", seed=0)
    mcs.compute()
    spa = SPA(naive, losses, block_size=block, reps=1000, bootstrap="mbb", seed=0)
    spa.compute()
    in_set = set(mcs.included)
    runs = result.runs.set_index("run_id")
    assert {run_id: bool(runs.loc[run_id, "in_mcs"]) for run_id in ids} == {run_id: run_id in in_set for run_id in ids}
    assert 0 < len(in_set - {"naive"}) < len(ids)  # the set tells some apart
    assert result.models.naive_in_mcs == ("naive" in in_set)
    assert result.models.spa_p == pytest.approx(float(spa.pvalues["consistent"]), abs=0)
    assert result.models.block == block == 4 and result.models.days == len(DAYS)
    report = MlflowClient().search_runs([result.experiment_id], "tags.`lstmlab.report` = 'true'")
    assert not report  # compare() alone logs nothing; the command does
    assert cli_main(["compare"]) == 0
    tags = MlflowClient().search_runs([result.experiment_id], "tags.`lstmlab.report` = 'true'")[0].data.tags
    groups = result.runs.loc[result.runs["run_id"].isin(in_set), "group"]  # in the report's order
    assert tags["compare.mcs"] == ", ".join([*dict.fromkeys(groups), *(["naive"] if "naive" in in_set else [])])
    assert tags["compare.spa_p"] == f"{float(spa.pvalues['consistent']):.4g}"


def test_with_more_runs_than_the_bound_mcs_and_spa_take_those_with_the_lowest_val_rmse():
    rng = np.random.default_rng(1)
    losses = pd.DataFrame(rng.gamma(2.0, 1.0, size=(80, 6)) * [1.0, 0.9, 1.2, 0.8, 1.1, 1.3], columns=list("uvwxyz"))
    naive = pd.Series(rng.gamma(2.0, 1.0, size=80), name="naive")
    validation = pd.Series({"u": 3.0, "v": 1.0, "w": np.nan, "x": 5.0, "y": 2.0, "z": 4.0})
    found = model_tests(losses, naive, validation, 0.05, most=3)
    assert list(found.in_mcs) == ["v", "y", "u"] and found.candidates == 6  # lowest val_rmse first, NaN never
    block = block_length(80)
    mcs = MCS(losses[["v", "y", "u"]].join(naive), size=0.05, reps=1000, block_size=block, method="max",
              bootstrap="mbb", seed=0)
    mcs.compute()
    spa = SPA(naive, losses[["v", "y", "u"]], block_size=block, reps=1000, bootstrap="mbb", seed=0)
    spa.compute()
    assert found.in_mcs == {m: m in set(mcs.included) for m in ("v", "y", "u")}
    assert found.spa_p == float(spa.pvalues["consistent"])
    lines = forecasters.describe(pd.DataFrame({"run_id": list("uvwxyz"), "group": list("uvwxyz")}), found, 0.05)
    assert "the 3 trained models with the lowest val_rmse (of 6; the rest not examined: in_mcs empty)" in lines[0]
    assert forecasters.in_mcs_column(pd.Series(list("uvwx")), found).isna().tolist() == [False, False, True, True]
