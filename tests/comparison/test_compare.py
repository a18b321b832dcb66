"""`lstmlab compare` on real MLflow stores: runs logged with known metrics (the statistics) and
runs really trained (end to end). Every number compare reports is recomputed here from the runs
as MLflow returns them."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from compare_store import DAYS, Store, final_metrics
from mlflow import MlflowClient
from scipy import stats as scipy_stats

from conftest import train_groups_in_own_store
from lstmlab.cli import main as cli_main
from lstmlab.comparison.compare import compare
from lstmlab.comparison.predictions import default_cache
from lstmlab.comparison.report import description
from lstmlab.comparison.verdict import verdict_head
from lstmlab.errors import LstmlabError
from lstmlab.names import FINAL_METRICS

# Per seed 1, 2, 3, ... of each variant: its val_rmse, and the scale of its daily test errors (its
# test_rmse, up to the seed's own shocks); the verdicts are known in advance.
KNOWN = {
    "baseline": [1.00, 1.10, 0.90, 1.05],
    "worse": [2.00, 2.20, 1.90, 2.10],
    "better": [0.50, 0.55, 0.45, 0.52],
    "noisy": [0.60, 1.60, 0.90, 1.30],
    "single": [0.80],
    # the baseline's own daily errors, days in reverse order: the same test RMSE per seed, other days
    "reversed": [1.00, 1.10, 0.90, 1.05],
}
ONE_RUN = "no verdict (one finished seed; train with trainer.seed=1,2,3,...)"
# the verdicts without their reasons (comparison.verdict.verdict_head)
VERDICTS = {"baseline": "baseline", "worse": "worse", "better": "better", "noisy": "no evidence", "single": "no verdict",
            "reversed": "no evidence"}


def shocks(seed: int) -> np.ndarray:
    """A seed's daily forecast errors before scaling: the same for every variant at that seed."""
    return np.random.default_rng(100 + seed).normal(size=len(DAYS))


def errors_of(variant: str, seed: int) -> np.ndarray:
    """The daily errors (predicted − actual) of a run: its KNOWN value times the seed's shocks."""
    if variant == "reversed":
        return KNOWN["baseline"][seed - 1] * shocks(seed)[::-1]
    return KNOWN[variant][seed - 1] * shocks(seed)


LONG = "an_unusually_long_variant_name_that_would_not_fit"
WIDE_EXPERIMENT = "an experiment whose long name makes a chart title that must wrap to stay inside the figure"
WIDE = [
    ("baseline", {}),
    *[(f"{LONG}_{k}", {}) for k in range(5)],
    *[("sweep_trial", {"model.dropout": str(d), "data.lookback": "None" if k % 2 else "30"})
      for k, d in enumerate((0.1, 0.2, 0.3))],
    ("sweep_trial", {"model.dropout": "0.1", "data.lookback": "60"}),
    ("sweep_trial", {}),  # no dropout, no lookback param at all: never labelled "nan"
]


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One store, logged once: the KNOWN groups, a sweep, and runs compare must leave out."""
    folder = tmp_path_factory.mktemp("known")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        store = Store()
        ids: dict[str, list[str]] = {}
        # older: runs on other data, and a walk-forward evaluation of the same data (like-with-like leaves them out)
        other = {"tags": {"data_sha256": "e" * 64}, "params": {"data.source": "synthetic"}}
        ids["other_data"] = [store.log(v, s, final_metrics(1.0 + s / 10, s), errors=shocks(s), **other)
                             for v in ("baseline", "tanh") for s in (1, 2)]
        walk = {"evaluation.name": "walk_forward", "evaluation.folds": "5"}
        ids["walk_forward"] = [store.log("baseline", s, final_metrics(1.0 + s / 10, s), params=walk, errors=shocks(s),
                                         run_name="baseline-wf") for s in (1, 2)]
        # a report run of an earlier compare, even with final metrics and tagged baseline: never compared
        ids["report"] = store.log("baseline", 5, final_metrics(0.1, 5), tags={"lstmlab.report": "true"},
                                  run_name="compare-earlier")
        for variant, values in KNOWN.items():
            if variant == "baseline":
                continue
            ids[variant] = [store.log(variant, seed, final_metrics(v, seed), errors=errors_of(variant, seed))
                            for seed, v in enumerate(values, 1)]
        # baseline last, so its seed-4 run is the latest run tagged baseline=true
        ids["baseline"] = [store.log("baseline", s, final_metrics(v, s), errors=errors_of("baseline", s))
                           for s, v in enumerate(KNOWN["baseline"], 1)]
        # a rerun of worse/seed 1 (same config, seed and result): counted once, not as a fifth sample
        ids["rerun"] = store.log("worse", 1, final_metrics(KNOWN["worse"][0], 1), tags={"rerun_of": ids["worse"][0]},
                                 errors=errors_of("worse", 1))
        # left out: a failed baseline (newer than every finished one), a running run
        ids["failed"] = store.log("baseline", 9, {"val_rmse": 0.01}, status="FAILED")
        ids["running"] = store.log("baseline", 8, {"val_rmse": 0.01}, status="RUNNING")
        # a sweep: the parent carries a summary metric; one trial pruned
        parent = store.log("sweep", 0, {"val_rmse": 0.3}, tags={"optuna_study": "study-a"}, run_name="study-a")
        child = {"mlflow.parentRunId": parent}
        ids["parent"] = parent
        ids["trials"] = [
            store.log("trial", 1, final_metrics(0.3, 1), lr="0.01", tags={**child, "optuna_trial": "0"}, run_name="trial-0"),
            store.log("trial", 1, final_metrics(1.7, 1), lr="0.1", tags={**child, "optuna_trial": "1"}, run_name="trial-1"),
        ]
        ids["pruned"] = store.log("trial", 1, {"val_rmse": 9.0}, lr="0.5",
                                  tags={**child, "optuna_trial": "2", "state": "pruned"}, run_name="trial-2")
        ids["lonely_parent"] = store.log("sweep", 0, {"val_rmse": 0.2}, tags={"optuna_study": "study-b"}, run_name="study-b")
        Store("empty")
        Store("no-baseline").log("tanh", 1, final_metrics(1.0, 1))
        diverged = Store("failed-baseline")  # every baseline seed diverged: no reference to judge by
        for seed in (1, 2):
            diverged.log("baseline", seed, {"val_rmse": float("nan")}, status="FAILED")
        diverged.log("tanh", 1, final_metrics(1.0, 1))
        wide = Store(WIDE_EXPERIMENT)  # many groups, long names, names shared, params unset in some groups
        for k, (variant, extra) in enumerate(WIDE):
            for seed in (1, 2):
                wide.log(variant, seed, final_metrics(1.0 + k / 20 + seed / 100, seed), errors=(1.0 + k / 20) * shocks(seed),
                         lr=str(0.001 * (1 + k % 3)), params=extra)
    return {"uri": uri, "ids": ids}


@pytest.fixture
def known_store(known: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", known["uri"])
    mlflow.set_tracking_uri(known["uri"])
    return known


def metrics_of(run_id: str) -> dict[str, float]:
    """Final metrics as MLflow holds them: what compare must agree with."""
    return MlflowClient().get_run(run_id).data.metrics


def group_members(comparison, group: str, finished: bool = True) -> list[str]:
    """The group's runs (only those that finished, unless `finished` is False)."""
    runs = comparison.runs
    return runs.loc[(runs["group"] == group) & (runs["status"].eq("FINISHED") | (not finished)), "run_id"].tolist()


def heads(groups: pd.DataFrame) -> dict[str, str]:
    return {group: verdict_head(text) for group, text in zip(groups["group"], groups["verdict"])}


@pytest.mark.slow
def test_groups_means_sds_and_welch_verdicts_equal_those_recomputed_from_the_runs(known_store):
    ids = known_store["ids"]
    result = compare()

    assert result.baseline_run_id == ids["baseline"][-1]  # latest finished baseline, not the failed one
    shown = set(result.runs["run_id"])
    for left_out in ("running", "parent", "lonely_parent", "pruned"):
        assert ids[left_out] not in shown
    # a failed seed of the baseline's configuration counts in its group, beside the 4 that finished
    assert ids["failed"] in shown and result.runs.set_index("run_id").loc[ids["failed"], "status"] == "FAILED"
    assert ids["failed"] in group_members(result, "baseline", finished=False)
    assert ids["worse"][0] not in shown and ids["rerun"] in shown  # the latest of a repeated seed
    assert any("Left out 1 older run" in note for note in result.notes)

    groups = result.groups.set_index("group")
    baseline_values = [metrics_of(i)["val_rmse"] for i in group_members(result, "baseline")]
    assert sorted(baseline_values) == sorted(KNOWN["baseline"])
    base_rmse = [metrics_of(i)["test_rmse"] for i in group_members(result, "baseline")]
    for variant, expected_verdict in VERDICTS.items():
        members = group_members(result, variant)
        values = [metrics_of(i)["val_rmse"] for i in members]
        row = groups.loc[variant]
        assert row["n"] == len(KNOWN[variant]) == len(values)
        assert row["seeds"] == ",".join(str(s) for s in range(1, len(values) + 1)) + (",9" if variant == "baseline" else "")
        assert row["val_rmse_mean"] == pytest.approx(np.mean(values), rel=1e-12)
        if len(values) > 1:
            assert row["val_rmse_sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
        else:
            assert math.isnan(row["val_rmse_sd"])
        assert row["val_rmse_diff"] == pytest.approx(np.mean(values) - np.mean(baseline_values), abs=1e-12)
        for metric in FINAL_METRICS:
            assert row[f"{metric}_mean"] == pytest.approx(np.mean([metrics_of(i)[metric] for i in members]), rel=1e-12)
        assert verdict_head(row["verdict"]) == expected_verdict
        assert row["failed"] == ("1/5" if variant == "baseline" else f"0/{len(values)}")
        if expected_verdict in ("better", "worse", "no evidence"):  # Welch on log test_rmse, not val_rmse
            rmse = [metrics_of(i)["test_rmse"] for i in members]
            expected = scipy_stats.ttest_ind(np.log(rmse), np.log(base_rmse), equal_var=False)
            assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
            assert row["t_statistic"] == pytest.approx(expected.statistic, rel=1e-9)
        else:
            assert math.isnan(row["p_value"])
    assert list(result.groups["val_rmse_mean"]) == sorted(result.groups["val_rmse_mean"])  # best first


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_every_run_differs_from_the_baseline_run_by_what_its_metrics_say(known_store):
    result = compare()
    base = metrics_of(result.baseline_run_id)
    assert result.runs.loc[result.runs["baseline_run"], "run_id"].tolist() == [result.baseline_run_id]
    for row in result.runs[result.runs["status"] == "FINISHED"].itertuples(index=False):
        logged = metrics_of(row.run_id)
        for metric in FINAL_METRICS:
            assert getattr(row, metric) == logged[metric]
            assert getattr(row, f"{metric}_diff") == pytest.approx(logged[metric] - base[metric], abs=1e-12)
            assert getattr(row, f"{metric}_rel_diff") == pytest.approx(
                (logged[metric] - base[metric]) / abs(base[metric]), abs=1e-12)
    finished = result.runs[result.runs["status"] == "FINISHED"]
    assert list(finished["val_rmse"]) == sorted(finished["val_rmse"])
    assert result.runs["status"].iloc[-1] == "FAILED"  # a failed run's metrics are no number: last


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_higher_is_better_metric_sorts_descending_and_keeps_the_verdicts_right(known_store):
    result = compare(metric="test_skill")
    assert list(result.groups["test_skill_mean"]) == sorted(result.groups["test_skill_mean"], reverse=True)
    finished = result.runs[result.runs["status"] == "FINISHED"]
    verdicts = heads(result.groups)
    assert verdicts["better"] == "better" and verdicts["worse"] == "worse"  # lower RMSE, higher skill
    assert list(finished["test_skill"]) == sorted(finished["test_skill"], reverse=True)


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_sweep_by_parent_id_or_study_name_and_a_filter_narrow_the_runs(known_store):
    ids = known_store["ids"]
    for sweep in (ids["parent"], "study-a"):
        result = compare(sweep=sweep)
        assert set(result.runs["run_id"]) == set(ids["trials"]) | set(ids["baseline"]) | {ids["failed"]}
        labels = set(result.groups["group"])  # two trials named alike: told apart by the param that differs
        assert labels == {"baseline", "trial (learning_rate=0.01)", "trial (learning_rate=0.1)"}
        assert set(result.groups.loc[~result.groups["baseline_group"], "verdict"]) == {ONE_RUN}
        assert any("from outside the selection" in note for note in result.notes)

    result = compare(filter_string="tags.variant = 'better'")
    assert set(result.runs["run_id"]) == set(ids["better"]) | set(ids["baseline"]) | {ids["failed"]}


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_an_explicit_baseline_run_sets_the_reference(known_store):
    ids = known_store["ids"]
    result = compare(baseline=ids["better"][0][:8])
    assert result.baseline_run_id == ids["better"][0]
    verdicts = heads(result.groups)
    assert verdicts["better"] == "baseline" and verdicts["baseline"] == "worse"
    base = metrics_of(ids["better"][0])["val_rmse"]
    row = result.runs.set_index("run_id").loc[ids["worse"][1]]
    assert row["val_rmse_diff"] == pytest.approx(KNOWN["worse"][1] - base)


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_the_command_prints_the_tables_and_writes_csv_markdown_and_a_chart(known_store, project_dir, capsys):
    assert cli_main(["compare"]) == 0
    out = capsys.readouterr().out
    for text in ("Seed groups", "worse", "better", "no evidence", "no verdict [", "] one finished seed; train with trainer.seed=",
                 "Welch", known_store["ids"]["baseline"][-1], "Model confidence set of configurations",
                 "Model confidence set of trained models (these models on these 60 days",
                 "SPA (these trained models on these 60 days", "Strength: with these seeds the smallest change",
                 "… 9 more runs between the best 10 and the worst 5", "4 (1 failed)"):
        assert text in out
    reports = list((project_dir / "experiments" / "reports").iterdir())
    assert len(reports) == 1
    folder = reports[0]
    assert sorted(p.name for p in folder.iterdir()) == ["chart.png", "groups.csv", "report.md", "runs.csv"]
    assert (folder / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = pd.read_csv(folder / "runs.csv")
    for row in runs.itertuples(index=False):
        assert row.val_rmse == metrics_of(row.run_id)["val_rmse"]
    groups = pd.read_csv(folder / "groups.csv").set_index("group")
    assert groups.loc["worse", "verdict"] == "worse" and groups.loc["worse", "n"] == 4
    assert {"mde", "seeds_needed", "p_beats", "failed", "in_mcs"} <= set(groups.columns)
    markdown = (folder / "report.md").read_text()
    assert "| group | n | failed | seeds |" in markdown and "| worse | 4 | 0/4 | 1,2,3,4 |" in markdown


@pytest.mark.slow  # shares a trained fixture with a slow test
@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment", "nope"], "no experiment named 'nope'"),
        (["--experiment", "empty"], "has no finished runs with val_rmse"),
        (["--experiment", "no-baseline"], "no baseline in experiment 'no-baseline'"),
        (["--experiment", "failed-baseline"], "the baseline in experiment 'failed-baseline' has no run with a finite "
                                              "test RMSE: its 2 run(s) failed"),
        (["--filter", "params.x ="], "bad filter"),
        (["--filter", "tags.variant = 'none-such'"], "no finished runs with val_rmse"),
        (["--baseline", "0" * 32], "--baseline 00000000000000000000000000000000"),
        (["--sweep", "no-such-study"], "neither a run id nor a study name"),
        (["--alpha", "2"], "--alpha 2.0 must be between 0 and 1"),
        (["--margin", "5"], "--margin 5.0 must be a relative change between 0 and 1"),
        (["--effect", "0"], "--effect 0.0 must be a relative change between 0 and 1"),
    ],
)
def test_user_errors_are_one_line(known_store, capsys, args, message):
    assert cli_main(["compare", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab compare: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_compare_does_not_import_keras_or_tensorflow(known_store, project_dir):
    code = (
        "import sys; from lstmlab.cli import main; rc = main(['compare']); "
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules); "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": known_store["uri"]}
    done = subprocess.run([sys.executable, "-c", code], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


# ---- end to end: really trained runs ----------------------------------------------------------

# A learning rate a thousand times too small leaves the weights where they started: a model
# that is worse than the baseline whatever the seed.
CRIPPLED = ["model.units=[16]", "model.activation=tanh", "optimizer.learning_rate=1e-6", "tracking.variant=crippled"]
# The baseline trains 6 epochs: at 2 a tiny model's seeds still spread its test RMSE twofold (3.4 to 10.7).
BASELINE = ["model.units=[4,4]", "optimizer.learning_rate=0.01", "trainer.epochs=6", "tracking.variant=baseline"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three seeds each of a small baseline and a crippled variant, trained for real."""
    return train_groups_in_own_store(tmp_path_factory.mktemp("trained"),
                                     {"baseline": (BASELINE, (1, 2, 3)), "crippled": (CRIPPLED, (1, 2, 3))})


@pytest.mark.slow
def test_real_runs_a_crippled_variant_comes_out_significantly_worse(trained, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    assert cli_main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "crippled" in out and "worse" in out

    mlflow.set_tracking_uri(trained["uri"])
    result = compare()
    groups = result.groups.set_index("group")
    assert result.baseline_run_id == trained["ids"]["baseline"][-1]
    assert set(groups.index) == {"baseline", "crippled"}
    base = [metrics_of(i)["val_rmse"] for i in trained["ids"]["baseline"]]
    crippled = [metrics_of(i)["val_rmse"] for i in trained["ids"]["crippled"]]
    assert groups.loc["crippled", "n"] == 3 and groups.loc["crippled", "seeds"] == "1,2,3"
    assert groups.loc["crippled", "val_rmse_mean"] == pytest.approx(np.mean(crippled), rel=1e-12)
    assert groups.loc["baseline", "val_rmse_sd"] == pytest.approx(np.std(base, ddof=1), rel=1e-12)
    tested = {name: np.log([metrics_of(i)["test_rmse"] for i in trained["ids"][name]]) for name in ("crippled", "baseline")}
    expected = scipy_stats.ttest_ind(tested["crippled"], tested["baseline"], equal_var=False).pvalue  # test, not val
    assert groups.loc["crippled", "p_value"] == pytest.approx(expected, rel=1e-9)
    assert groups.loc["crippled", "rmse_change_low"] > 0  # and the interval says worse too
    assert groups.loc["crippled", "p_value"] < 0.05
    assert groups.loc["crippled", "verdict"] == "worse"


# ---- the paired test, like with like, the report run ------------------------------------------


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_the_effect_its_interval_holm_and_the_strength_equal_those_recomputed_from_the_runs(known_store):
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import TTestIndPower
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    result = compare()  # sorted by val_rmse, yet every test reads test_rmse
    groups = result.groups.set_index("group")
    base = np.log([metrics_of(i)["test_rmse"] for i in group_members(result, "baseline")])
    tested = [g for g in groups.index if g != "baseline" and groups.loc[g, "n"] > 1]
    assert sorted(tested) == sorted(["worse", "better", "noisy", "reversed"])
    for group in tested:
        logs = np.log([metrics_of(i)["test_rmse"] for i in group_members(result, group)])
        row = groups.loc[group]
        assert row["p_value"] == pytest.approx(scipy_stats.ttest_ind(logs, base, equal_var=False).pvalue, rel=1e-9)
        assert row["rmse_change"] == pytest.approx(math.exp(logs.mean() - base.mean()) - 1, rel=1e-9)
        low, high = CompareMeans(DescrStatsW(logs), DescrStatsW(base)).tconfint_diff(usevar="unequal")
        assert (row["rmse_change_low"], row["rmse_change_high"]) == pytest.approx((math.expm1(low), math.expm1(high)), rel=1e-9)
        squares = (len(logs) - 1) * logs.var(ddof=1) + (len(base) - 1) * base.var(ddof=1)
        pooled = math.sqrt(squares / (len(logs) + len(base) - 2))
        d = TTestIndPower().solve_power(nobs1=len(logs), ratio=len(base) / len(logs), alpha=0.05 / len(tested), power=0.8)
        assert row["mde"] == pytest.approx(math.expm1(d * pooled), rel=1e-5)
    # Holm over every group of this report that has the test (not the one-run group)
    assert set(groups.index[groups["p_value"].notna()]) == set(tested)
    expected = multipletests(groups.loc[tested, "p_value"].to_numpy(), method="holm")[1]
    assert groups.loc[tested, "welch_p_holm"].to_numpy() == pytest.approx(expected, rel=1e-12)
    assert groups.loc["reversed", "p_value"] == pytest.approx(1.0)  # the same test RMSE per seed
    assert groups.loc["reversed", "rmse_change_low"] < 0 < groups.loc["reversed", "rmse_change_high"]
    assert groups.loc["single", "verdict"] == ONE_RUN  # whatever its days say
    assert not math.isnan(groups.loc["single", "rmse_change"]) and math.isnan(groups.loc["single", "rmse_change_low"])
    assert not {"dm_stat", "dm_p", "dm_p_holm", "paired_days"} & set(result.groups.columns)


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_by_default_only_runs_on_the_baselines_data_and_evaluation_and_the_notes_say_what_was_left_out(known_store):
    ids = known_store["ids"]
    result = compare()
    shown = set(result.runs["run_id"])
    assert not shown & set(ids["other_data"]) and not shown & set(ids["walk_forward"])
    assert ids["report"] not in shown and result.baseline_run_id != ids["report"]
    assert result.data == "sp500 dddddddd" and result.evaluation == "holdout"
    notes = " ".join(result.notes)
    assert "Left out 4 runs on other data (synthetic eeeeeeee: 4)" in notes and "--data" in notes and "--all" in notes
    assert "Left out 2 runs evaluated otherwise (walk_forward (folds=5): 2)" in notes
    assert "--filter \"params.evaluation.name = 'walk_forward'\"" in notes

    for data in ("synthetic", "eeee"):  # a name or a fingerprint prefix: that data, its own latest baseline
        other = compare(data=data)
        assert set(other.runs["run_id"]) == set(ids["other_data"])
        assert other.baseline_run_id == ids["other_data"][1]  # baseline seed 2, the later one
        assert set(other.groups["group"]) == {"baseline", "tanh"}

    walk = compare(filter_string="params.evaluation.name = 'walk_forward'")
    assert set(walk.runs["run_id"]) == set(ids["walk_forward"]) and walk.evaluation == "walk_forward (folds=5)"


@pytest.mark.slow
def test_data_go_by_the_name_the_mlflow_ui_shows_and_a_csvs_file_name_finds_them_too():
    from omegaconf import OmegaConf

    from lstmlab.pipeline.data import data_name
    from lstmlab.records.summary import summarize

    store = Store()  # this test's own store
    on_csv = {"tags": {"data_sha256": "c" * 64}, "params": {"data.source": "csv", "data.path": "/data/prices.csv"}}
    ids = [store.log(v, s, final_metrics(1.0 + s / 10, s), errors=shocks(s), **on_csv)
           for v in ("baseline", "tanh") for s in (1, 2)]
    store.log("baseline", 1, final_metrics(1.0, 1), errors=shocks(1))  # on sp500, the latest baseline
    logged_as = data_name(OmegaConf.create(on_csv["params"] | {"source": "csv", "path": "/data/prices.csv"}))
    assert logged_as == summarize(ids[0]).data == "csv-prices"  # the dataset input's name, the summary's
    assert "Left out 4 runs on other data (csv-prices cccccccc: 4)" in " ".join(compare().notes)
    for data in ("csv-prices", "CSV-Prices", "prices.csv", "prices", "/elsewhere/prices.csv", "cccc"):
        result = compare(data=data)
        assert set(result.runs["run_id"]) == set(ids) and result.data == "csv-prices cccccccc", data
    with pytest.raises(LstmlabError, match=r"--data 'volumes.csv' matches no run's data.*csv-prices cccccccc"):
        compare(data="volumes.csv")


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_all_keeps_other_data_without_a_verdict_but_only_the_baselines_evaluation(known_store, capsys):
    ids = known_store["ids"]
    both = compare(include_all=True)
    shown = set(both.runs["run_id"])
    assert set(ids["other_data"]) <= shown and not shown & set(ids["walk_forward"])
    groups = both.groups.set_index("group")
    assert groups.loc["baseline (data=synthetic)", "verdict"] == "no verdict (other data: no common test days)"
    assert groups.loc["baseline (data=sp500)", "baseline_group"]
    assert both.data.startswith("mixed") and both.evaluation == "holdout"
    assert both.notes[0] == ("Left out 2 runs evaluated otherwise (walk_forward (folds=5): 2). Compare them with "
                             "--filter \"params.evaluation.name = 'walk_forward'\" (the baseline is then taken among "
                             "them) or --baseline RUN_ID on that evaluation.")
    assert not any(note.startswith("Left out") and "other data" in note for note in both.notes)
    assert cli_main(["compare", "--all"]) == 0 and "baseline (data=synthetic)" in capsys.readouterr().out

    walk = compare(include_all=True, baseline=ids["walk_forward"][0])  # its evaluation, every dataset
    assert set(walk.runs["run_id"]) == set(ids["walk_forward"]) and walk.evaluation == "walk_forward (folds=5)"
    holdout = int((both.runs["evaluation"] == "holdout").sum())
    assert f"Left out {holdout} runs evaluated otherwise (holdout: {holdout})" in " ".join(walk.notes)
    assert cli_main(["compare", "--data", "synthetic", "--baseline", ids["baseline"][0]]) == 2
    assert "is on data sp500 dddddddd, not on --data 'synthetic'" in capsys.readouterr().err
    assert cli_main(["compare", "--data", "nowhere"]) == 2
    assert "--data 'nowhere' matches no run's data" in capsys.readouterr().err


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_groups_on_other_data_get_neither_test_and_leave_the_holm_correction_of_the_others_alone(known_store):
    both = compare(include_all=True)
    other = both.groups[both.groups["verdict"] == "no verdict (other data: no common test days)"]
    assert sorted(other["group"]) == ["baseline (data=synthetic)", "tanh"]
    assert other[["t_statistic", "p_value", "welch_p_holm", "rmse_change", "rmse_change_low"]].isna().all().all()
    same = both.groups.drop(other.index)
    same = same.assign(group=same["group"].str.replace(" (data=sp500)", "", regex=False)).set_index("group")
    alone = compare().groups.set_index("group")
    assert sorted(same.index) == sorted(alone.index)
    for column in ("p_value", "welch_p_holm", "rmse_change", "rmse_change_low", "rmse_change_high", "verdict"):
        assert same[column].equals(alone.loc[same.index, column]), column


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_the_compare_logs_a_report_run_that_later_compares_leave_out(known_store, project_dir, capsys):
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lstmlab")
    query = "tags.`lstmlab.report` = 'true' AND attributes.run_name LIKE 'compare-%'"
    before = {r.info.run_id for r in client.search_runs([experiment.experiment_id], query)}
    assert cli_main(["compare"]) == 0
    reports = [r for r in client.search_runs([experiment.experiment_id], query) if r.info.run_id not in before]
    assert len(reports) == 1  # one compare, one report run
    report = reports[0]
    assert f"In MLflow: run {report.info.run_name} ({report.info.run_id})" in capsys.readouterr().out
    assert report.info.status == "FINISHED" and report.data.tags["compare.worse"] == "worse"
    assert report.data.tags["compare.better"] == "better"
    assert sorted(a.path for a in client.list_artifacts(report.info.run_id)) == \
        ["chart.png", "groups.csv", "report.md", "runs.csv"]
    folder = Path(client.download_artifacts(report.info.run_id, "", str(project_dir / "fetched")))
    markdown = (folder / "report.md").read_text()
    for text in ("**Data**: sp500 dddddddd", "**Evaluation**: holdout", "**Seeds per group** (finished; failed):",
                 "worse 4; 0/4", "baseline 4; 1/5", "**Strength**: with these seeds",
                 "**Naive forecast**: Groups that beat the naive forecast"):
        assert text in markdown
    groups = pd.read_csv(folder / "groups.csv")
    assert {"p_value", "welch_p_holm", "rmse_change", "rmse_change_low", "rmse_change_high", "verdict"} <= \
        set(groups.columns)
    assert "in_mcs" in pd.read_csv(folder / "runs.csv").columns
    assert report.data.tags["mlflow.note.content"] == description(markdown)  # the report, cut to a tag's limit
    for tag in ("compare.mde", "compare.seeds_needed", "compare.equivalent", "compare.failed"):
        assert tag in report.data.tags
    assert report.data.tags["compare.failed"] == "baseline 1/5"
    again = compare()
    assert report.info.run_id not in set(again.runs["run_id"])
    assert again.baseline_run_id == known_store["ids"]["baseline"][-1]


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_predictions_are_downloaded_once_into_the_users_cache(known_store, tmp_path, monkeypatch):
    ids = known_store["ids"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "xdg" / "lstmlab" / "predictions"
    first = compare()
    cached = {p.parent.name for p in cache.glob("*/predictions.npy")}
    assert set(ids["baseline"]) | set(ids["better"]) <= cached
    assert not set(ids["trials"]) & cached and not list(cache.glob(".*"))  # trials have none; no partial left
    assert {p.name for p in cache.iterdir()} == cached  # nothing is kept for a run without predictions
    before = {p: p.stat().st_mtime_ns for p in cache.glob("*/*")}
    again = compare()
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*/*")} == before
    pd.testing.assert_frame_equal(again.groups, first.groups)  # the cached copy is the artifact, every digit
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache() == tmp_path / "home" / ".cache" / "lstmlab" / "predictions"


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_cache_that_cannot_be_written_costs_the_copy_not_the_verdicts(known_store, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("where the cache folder would go")
    result = compare(cache=in_the_way / "predictions")
    groups = result.groups.set_index("group")
    assert {variant: verdict_head(groups.loc[variant, "verdict"]) for variant in VERDICTS} == VERDICTS
    assert groups["in_mcs"].notna().any()  # the predictions were read: the model tests ran
    assert in_the_way.read_text() == "where the cache folder would go"


def overlaps(boxes: list) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_many_groups_long_and_shared_names_get_short_unique_labels_a_narrow_table_and_a_clean_chart(known_store, monkeypatch):
    from lstmlab.comparison.chart import figure
    from lstmlab.comparison.render import render_text, terminal_group_view

    monkeypatch.setenv("COLUMNS", "120")  # a terminal of 120 columns (xdist's workers may report another)
    result = compare(experiment=WIDE_EXPERIMENT)
    labels = list(result.groups["group"])
    assert len(labels) == len(WIDE) == len(set(labels))
    for label in labels:
        assert not any(bad in label for bad in ("nan", "None", "<unset>", "null")), label
        assert len(label) <= len(LONG) + 3 or label.startswith("sweep_trial"), label
    trials = sorted(label for label in labels if label.startswith("sweep_trial"))
    assert all(len(label) <= 60 for label in trials), trials
    text = render_text(result)
    assert max(len(line) for line in text.splitlines()) <= 120
    shown, _ = terminal_group_view(result)  # clipped for the terminal, still one label per group
    assert shown["group"].nunique() == len(labels) and all(label in text for label in shown["group"])
    head = next(line for line in text.splitlines() if line.strip().startswith("group "))
    assert all(column in head for column in ("test RMSE Δ", "verdict", "p*", "mde"))  # key columns kept

    for columns, fits in (("80", 80), ("40", 80), ("200", 200)):  # the terminal's width, never under 80
        monkeypatch.setenv("COLUMNS", columns)
        narrow = render_text(result)
        assert max(len(line) for line in narrow.splitlines()) <= fits
        head = next(line for line in narrow.splitlines() if line.strip().startswith("group "))
        assert all(column in head for column in ("group", "n", "test RMSE Δ", "verdict"))

    fig = figure(result)
    fig.canvas.draw()  # as savefig does: the layout is placed when drawn
    renderer = fig.canvas.get_renderer()
    ticks = [t.get_window_extent(renderer) for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert len(ticks) == len(labels) and not overlaps(ticks)
    texts = [fig._suptitle, *(ax.xaxis.label for ax in fig.axes)]
    boxes = [t.get_window_extent(renderer) for t in texts] + [ax.get_window_extent(renderer) for ax in fig.axes]
    assert not overlaps(boxes)  # titles, axis labels and the panels: each in its own place
    width, height = fig.canvas.get_width_height()
    for box in ticks + boxes:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height
    import matplotlib.pyplot as plt

    plt.close(fig)
    from lstmlab.comparison.render import render_markdown
    from lstmlab.comparison.report import TAG_LIMIT, description

    long = render_markdown(result) * 3  # a report longer than a tag may be: cut, and says where the rest is
    assert len(long) > TAG_LIMIT and len(description(long)) == TAG_LIMIT and description(long).endswith("report.md artifact.")


def test_a_chart_of_many_groups_draws_the_baseline_the_better_ones_and_the_best_and_worst_and_says_so():
    from lstmlab.comparison.chart import CHART_GROUPS, drawn_groups, figure
    from lstmlab.comparison.compare import Comparison

    count = 100
    verdicts = ["baseline" if k == 40 else "better" if k in (3, 77) else "no evidence" for k in range(count)]
    groups = pd.DataFrame({"group": [f"g{k}" for k in range(count)], "verdict": verdicts,
                           "baseline_group": [k == 40 for k in range(count)],
                           "val_rmse_mean": np.arange(count, dtype=float), "val_rmse_sd": 0.1,
                           "test_skill_mean": -np.arange(count) / 100, "test_skill_sd": 0.01,
                           "rmse_change": np.linspace(-0.2, 0.5, count), "rmse_change_low": np.linspace(-0.3, 0.4, count),
                           "rmse_change_high": np.linspace(-0.1, 0.6, count)})
    runs = pd.DataFrame({"group": np.repeat(groups["group"], 3).to_numpy(),
                         "val_rmse": np.repeat(groups["val_rmse_mean"], 3).to_numpy(), "test_skill": -0.5})
    chosen = drawn_groups(groups)
    assert len(chosen) == CHART_GROUPS == 30 and list(chosen.index) == sorted(chosen.index)
    rest = [k for k in range(count) if k not in (3, 40, 77)]
    expected = {3, 40, 77, *rest[:14], *rest[-13:]}  # baseline, better, then best and worst in turn
    assert set(chosen.index) == expected
    fig = figure(Comparison(experiment="big", experiment_id="1", store="sqlite://", metric="val_rmse", alpha=0.05,
                            margin=0.05, effect=0.05, baseline_run_id="x", runs=runs, groups=groups, selection="all"))
    fig.canvas.draw()
    assert len([t for t in fig.axes[0].get_yticklabels() if t.get_text()]) == CHART_GROUPS
    assert "30 of 100 groups drawn" in fig._suptitle.get_text().replace("\n", " ")
    assert "70 groups more in groups.csv" in fig._suptitle.get_text().replace("\n", " ")
