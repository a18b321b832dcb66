"""compare reads a database store's runs table directly (comparison.store_table): it must equal
`mlflow.search_runs` on a real store, value for value, so an MLflow upgrade that changes its
schema fails here instead of in a user's compare."""

from __future__ import annotations

import math

import mlflow
import pandas as pd
import pytest
from compare_store import Store, final_metrics
from mlflow import MlflowClient

from conftest import use_store
from lstmlab.comparison.store_table import experiment_runs


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    use_store(f"sqlite:///{tmp_path / 'mlflow.db'}", monkeypatch)
    return Store()


def test_the_table_equals_mlflow_search_runs_nan_inf_failed_and_deleted_runs_included(store):
    for seed in (1, 2, 3):
        store.log("baseline", seed, final_metrics(1.0 + seed / 10, seed), tags={"note": f"seed {seed}"})
    store.log("tanh", 1, {"val_rmse": math.nan, "test_rmse": math.inf}, status="FAILED")
    store.log("tanh", 2, {"val_rmse": 0.5}, status="RUNNING")
    store.log("sgd", 1, final_metrics(2.0, 1), status="KILLED", params={"extra.only_here": "x"})
    gone = store.log("sgd", 2, final_metrics(2.0, 2))
    MlflowClient().delete_run(gone)
    Store("another").log("baseline", 1, final_metrics(9.0, 1))

    ours = experiment_runs(store.experiment_id)
    theirs = mlflow.search_runs(experiment_ids=[store.experiment_id])
    assert set(ours.columns) == set(theirs.columns) and gone not in set(ours["run_id"])
    by_id = lambda table: table[sorted(table.columns)].sort_values("run_id").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(by_id(ours), by_id(theirs), check_dtype=False)
    failed = ours[ours["status"] == "FAILED"].iloc[0]
    assert math.isnan(failed["metrics.val_rmse"]) and failed["metrics.test_rmse"] > 1e308  # MLflow's inf
    assert list(ours["start_time"]) == sorted(ours["start_time"], reverse=True)  # newest first, as search_runs


def test_an_experiment_without_runs_is_an_empty_table(store):
    assert experiment_runs(store.experiment_id).empty
