"""`lstmlab compare --sweep S --confirm`: a sweep's confirm runs alone (the top trials and the
baseline retrained on fresh seeds) against its confirm baseline; plain `--sweep S` shows the
same configurations with their trial's own run beside them. Runs logged with known metrics in a
real MLflow store."""

from __future__ import annotations

import pytest
from compare_store import Store, final_metrics
from test_compare import errors_of

from conftest import use_store
from lstmlab.cli import main as cli_main
from lstmlab.comparison.compare import compare
from lstmlab.comparison.verdict import verdict_head
from lstmlab.errors import LstmlabError

SEEDS = (1, 2, 3)
TRIALS = {0: ("0.01", "better"), 1: ("0.1", "worse")}  # trial → its learning rate, its errors' scale (compare_store)


@pytest.fixture
def sweep(tmp_path, monkeypatch) -> dict:
    use_store(f"sqlite:///{tmp_path / 'mlflow.db'}", monkeypatch)
    monkeypatch.chdir(tmp_path)
    store = Store()
    outside = [store.log("baseline", s, final_metrics(1.0, s), errors=errors_of("baseline", s)) for s in (1, 2, 3, 4)]
    parent = store.log("sweep", 0, {"best_val_rmse": 0.3}, tags={"optuna_study": "study-c"}, run_name="study-c")
    child = {"mlflow.parentRunId": parent}
    trials = {n: store.log("custom", 42, final_metrics(0.3, 42), lr=lr, tags={**child, "optuna_trial": str(n)},
                           errors=errors_of(kind, 1), run_name=f"trial-{n}") for n, (lr, kind) in TRIALS.items()}
    confirm = {n: [store.log("custom", s, final_metrics(0.5, s), lr=lr, errors=errors_of(kind, s),
                             tags={**child, "confirm.trial": str(n)}) for s in SEEDS] for n, (lr, kind) in TRIALS.items()}
    base = [store.log("baseline", s, final_metrics(1.0, s), errors=errors_of("baseline", s) * 1.01,
                      tags={**child, "confirm.baseline": "true"}) for s in SEEDS]
    return {"parent": parent, "outside": outside, "trials": trials, "confirm": confirm, "base": base}


def test_confirm_judges_the_confirm_runs_alone_against_the_confirm_baseline(sweep):
    result = compare(sweep="study-c", confirm=True)
    groups = result.groups.set_index("group")
    assert sorted(groups.index) == ["baseline", "trial 0", "trial 1"]
    assert result.baseline_run_id == sweep["base"][-1]
    assert set(result.runs["run_id"]) == {*sweep["base"], *sweep["confirm"][0], *sweep["confirm"][1]}  # no trial, no outside run
    assert groups["n"].tolist() == [3, 3, 3]
    assert [verdict_head(groups.loc[f"trial {n}", "verdict"]) for n in TRIALS] == ["better", "worse"]
    assert "its confirm runs" in result.selection


def test_plain_sweep_shows_each_confirmed_configuration_with_its_trials_own_run(sweep):
    result = compare(sweep=sweep["parent"])
    groups = result.groups.set_index("group")
    assert {"trial 0", "trial 1", "baseline"} <= set(groups.index)
    assert groups.loc["trial 0", "n"] == 4  # the trial's seed-42 run and its three confirm seeds: one configuration
    assert sweep["trials"][0] in set(result.runs["run_id"])


def test_confirm_needs_a_sweep_with_confirm_runs(sweep, capsys):
    with pytest.raises(LstmlabError, match="--confirm compares a sweep's confirm runs: give the sweep with --sweep"):
        compare(confirm=True)
    Store().log("sweep", 0, {"best_val_rmse": 0.3}, tags={"optuna_study": "study-d"}, run_name="study-d")
    assert cli_main(["compare", "--sweep", "study-d", "--confirm"]) == 2
    err = capsys.readouterr().err
    assert "has no confirm runs: run it with hydra.sweeper.confirm.top_k=K" in err and err.count("\n") == 1
