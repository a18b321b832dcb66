"""Walk-forward evaluation and log-return targets, trained for real on tiny data in a real store."""

from __future__ import annotations

import subprocess

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import LSTMLAB, TINY, csv_config, make_config, tiny_config, train_in_own_store, use_store
from lstmlab.errors import LstmlabError
from lstmlab.names import FINAL_METRICS
from lstmlab.pipeline.data import holdout_dataset, synthetic_prices
from lstmlab.pipeline.evaluation import fold_rows
from lstmlab.pipeline.experiment import run_experiment
from lstmlab.records.forecast import forecast

pytestmark = pytest.mark.slow

ROWS, FOLDS = 240, 3  # evaluation period: the last 24 rows (data.test_fraction 0.1), 8 per fold
FAST = ["model.units=[4,4]", "trainer.epochs=1"]
WALK = ["evaluation=walk_forward", f"evaluation.folds={FOLDS}"]


def write_prices(path, frame: pd.DataFrame) -> str:
    frame.rename_axis("Date").to_csv(path)
    return str(path)


def csv_run(folder, path: str, *overrides: str) -> dict:
    return train_in_own_store(folder, cfg=csv_config(path, *FAST, *WALK, *overrides))


def predictions(logged: dict) -> pd.DataFrame:
    path = mlflow.artifacts.download_artifacts(
        run_id=logged["run_id"], artifact_path="predictions.csv", tracking_uri=logged["uri"])
    return pd.read_csv(path, index_col="date", parse_dates=True)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return synthetic_prices(rows=ROWS, seed=0)


@pytest.fixture(scope="module")
def walked(tmp_path_factory, prices) -> dict:
    """One walk-forward run on a CSV of the tiny synthetic series, with its predictions."""
    folder = tmp_path_factory.mktemp("walk")
    logged = csv_run(folder, write_prices(folder / "prices.csv", prices))
    run = MlflowClient(logged["uri"]).get_run(logged["run_id"])
    return {**logged, "run": run, "predictions": predictions(logged), "folder": folder}


@pytest.fixture(scope="module")
def log_return_run(tmp_path_factory, prices) -> dict:
    """The same walk-forward run on log returns, with its model logged for `forecast`."""
    folder = tmp_path_factory.mktemp("log_return")
    logged = csv_run(folder, write_prices(folder / "prices.csv", prices),
                     "data.target_transform=log_return", "tracking.log_model=true")
    run = MlflowClient(logged["uri"]).get_run(logged["run_id"])
    return {**logged, "run": run, "predictions": predictions(logged), "folder": folder}


@pytest.mark.parametrize("window", ["expanding", "sliding"])
def test_folds_are_disjoint_in_time_order_and_cover_the_evaluation_period(window):
    cfg = make_config("evaluation=walk_forward", "evaluation.folds=4", f"evaluation.window={window}")
    folds = fold_rows(1003, cfg.data, cfg.evaluation)  # a period of 100 rows: windows of 25
    tests = [test for _, _, test in folds]
    assert np.array_equal(np.concatenate(tests), np.arange(903, 1003))  # all of it, in order, once
    assert [len(t) for t in tests] == [25, 25, 25, 25]
    for (train, val, test), first_test in zip(folds, [903, 928, 953, 978]):
        assert test[0] == first_test
        assert np.array_equal(np.concatenate([train, val]), np.arange(train[0], first_test))
        assert len(val) == round((first_test - train[0]) * 0.1)  # the last data.val_fraction
        if window == "expanding":
            assert train[0] == 0
        else:  # as many rows as the first fold, ending right before the window
            assert first_test - train[0] == 903
    uneven = fold_rows(1003, cfg.data, make_config("evaluation=walk_forward", "evaluation.folds=3",
                                                   "evaluation.test_size=100").evaluation)
    assert [len(t) for _, _, t in uneven] == [34, 33, 33]


def test_fold_metrics_are_logged_at_steps_one_to_folds_and_curves_across_folds(walked):
    client = MlflowClient(walked["uri"])
    run = walked["run"]
    assert run.info.status == "FINISHED" and set(FINAL_METRICS) <= run.data.metrics.keys()
    table = walked["predictions"]
    fold_val = []
    for name in ("fold_test_rmse", "fold_naive_test_rmse", "fold_val_rmse"):
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == [1, 2, 3]
        if name == "fold_val_rmse":
            fold_val = [m.value for m in history]
    for k, m in enumerate(client.get_metric_history(run.info.run_id, "fold_test_rmse"), start=1):
        rows = table[table["fold"] == k]
        assert m.value == pytest.approx(np.sqrt(np.mean((rows["predicted"] - rows["actual"]) ** 2)), rel=1e-6)
    assert run.data.metrics["val_rmse"] == pytest.approx(np.mean(fold_val), rel=1e-9)  # the objective
    # The per-epoch names (docs/contracts.md, "Metrics"), fold k's one epoch at step k, one point per epoch run; the
    # final metrics at the last one, and the last val_rmse point is the final (the folds' mean)
    for name in ("train_loss", "val_loss", "val_rmse"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [1, 2, 3]
    val_rmse = client.get_metric_history(run.info.run_id, "val_rmse")
    assert [m.value for m in val_rmse[:2]] == pytest.approx(fold_val[:2], rel=1e-9)  # one epoch per fold: its own
    assert val_rmse[-1].value == run.data.metrics["val_rmse"]  # the final one is the one shown
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_rmse")] == [3]
    assert not [name for name in run.data.metrics if "/" in name]  # no per-fold curve names
    assert run.data.metrics["epochs_run"] == 3  # one epoch per fold, summed


def test_pooled_metrics_recomputed_from_predictions_csv(walked, prices):
    table, metrics = walked["predictions"], walked["run"].data.metrics
    assert list(table.columns) == ["actual", "predicted", "naive", "fold"]
    assert list(table.index) == list(prices.index[-24:])  # every day of the evaluation period
    assert table.groupby("fold").size().tolist() == [8, 8, 8]
    error, naive = table["predicted"] - table["actual"], table["naive"] - table["actual"]
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-6)
    assert metrics["test_mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-6)
    assert metrics["naive_test_rmse"] == pytest.approx(np.sqrt(np.mean(naive**2)), rel=1e-9)
    assert metrics["test_skill"] == pytest.approx(1 - metrics["test_rmse"] / metrics["naive_test_rmse"])
    assert np.array_equal(table["naive"].to_numpy(), prices["Close"].to_numpy()[-25:-1])


def test_later_prices_cannot_change_earlier_folds(walked, prices, tmp_path):
    """Prices after fold 2's test window change: folds 1 and 2 predict exactly the same."""
    table = walked["predictions"]
    end_of_fold_2 = table[table["fold"] == 2].index.max()
    changed = prices.copy()
    changed.loc[changed.index > end_of_fold_2, "Close"] *= 1.3
    other = predictions(csv_run(tmp_path, write_prices(tmp_path / "changed.csv", changed)))
    same = table["fold"] <= 2
    pd.testing.assert_frame_equal(other[same], table[same])
    assert not np.allclose(other.loc[~same, "predicted"], table.loc[~same, "predicted"])


def test_log_return_runs_report_price_unit_metrics_against_the_same_naive(log_return_run, walked):
    metrics, table = log_return_run["run"].data.metrics, log_return_run["predictions"]
    plain = walked["run"].data.metrics
    assert metrics["naive_test_rmse"] == plain["naive_test_rmse"]  # the same days, the same naive
    # a return forecast stays next to yesterday's price: errors of the naive's size, in prices
    assert 0.5 < metrics["test_rmse"] / metrics["naive_test_rmse"] < 2
    error = table["predicted"] - table["actual"]
    assert metrics["test_rmse"] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-6)
    assert log_return_run["run"].data.params["data.target_transform"] == "log_return"


def test_forecast_of_a_log_return_run_reproduces_its_last_prediction(log_return_run, prices, tmp_path,
                                                                   monkeypatch):
    """The last fold's model and scalers, and last × exp(return), as training rebuilt prices."""
    use_store(log_return_run["uri"], monkeypatch)
    last_day = log_return_run["predictions"].index[-1]
    path = write_prices(tmp_path / "before.csv", prices.loc[prices.index < last_day].tail(9))
    result = forecast(log_return_run["run_id"], path)
    assert result.next_date == last_day
    assert result.price == pytest.approx(log_return_run["predictions"]["predicted"].iloc[-1], rel=1e-5)
    short = write_prices(tmp_path / "short.csv", prices.tail(8))  # 8 rows give 7 returns
    with pytest.raises(LstmlabError, match="the model needs the last 9"):
        forecast(log_return_run["run_id"], short)


def test_log_returns_round_trip_to_prices_in_a_holdout_split():
    data = holdout_dataset(make_config("data=synthetic", "data.rows=300", "data.lookback=10",
                               "data.target_transform=log_return").data)
    np.testing.assert_allclose(data.to_price(data.test.y[:, 0], data.test.previous), data.test.actual,
                               rtol=1e-5)
    returns = np.log(data.test.actual / data.test.previous)
    np.testing.assert_allclose(data.target_scaler.inverse_transform(data.test.y).ravel(), returns,
                               rtol=1e-4, atol=1e-6)
    assert len(data.train.y) == 300 - 60 - 10 - 1  # the first row has no return


@pytest.mark.parametrize("overrides, message", [
    (["evaluation.folds=0"], "evaluation.folds=0 must be a whole number of at least 1"),
    (["evaluation.folds=25"], "evaluation.folds=25 is too many: the evaluation period has 24 rows "
                              "(data.test_fraction=0.1), so at most 24 folds"),
    (["evaluation.window=rolling"], "evaluation.window='rolling' must be one of expanding, sliding"),
    (["data.target_transform=diff"], "data.target_transform='diff' must be one of none, log_return"),
])
def test_bad_evaluation_settings_fail_before_any_run(overrides, message):
    with pytest.raises(LstmlabError) as caught:
        run_experiment(tiny_config(*WALK, *overrides))
    assert str(caught.value) == message
    experiment = mlflow.get_experiment_by_name("lstmlab")
    assert experiment is None or not MlflowClient().search_runs([experiment.experiment_id])


def test_the_command_line_says_so_in_one_line():
    result = subprocess.run([*LSTMLAB, "train", "data=synthetic",
                             "evaluation=walk_forward", "evaluation.folds=1000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "lstmlab train: error: evaluation.folds=1000 is too many: the evaluation period has 120 rows "
        "(data.test_fraction=0.1), so at most 120 folds"]


def test_a_walk_forward_sweep_minimizes_the_mean_fold_val_rmse():
    import optuna

    result = subprocess.run(
        [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna",
         "hydra.sweeper.study_name=walk", "hydra.sweeper.n_trials=2", *TINY, *FAST,
         "evaluation=walk_forward", "evaluation.folds=2", "trainer.epochs=2",
         "model.dropout=interval(0,0.5)"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="walk", storage="sqlite:///mlruns/optuna.db").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    client = MlflowClient()
    for trial in trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        folds = client.get_metric_history(run.info.run_id, "fold_val_rmse")
        assert [m.step for m in folds] == [1, 2]
        assert trial.value == pytest.approx(np.mean([m.value for m in folds]), rel=1e-9)
        # one step per fold-epoch, numbered as the console numbers epochs: fold 1 epochs 1-2, then
        # fold 2 epochs 1-2 at steps 3-4, in Optuna and in the run's val_rmse curve alike; the
        # curve's last point carries the final val_rmse (the trial's value), no step after it
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        curve = client.get_metric_history(run.info.run_id, "val_rmse")
        assert [m.step for m in curve] == [1, 2, 3, 4]
        assert [trial.intermediate_values[s] for s in (1, 2, 3)] == pytest.approx([m.value for m in curve[:3]])
        assert curve[3].value == pytest.approx(trial.value, rel=1e-9) == run.data.metrics["val_rmse"]


def test_a_trial_pruned_in_a_later_fold_trains_no_further_fold():
    import optuna

    from lstmlab.sweep.trial import PruningHook

    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1e-9, n_warmup_steps=3))
    hook = PruningHook(study.ask())
    result = run_experiment(tiny_config(*FAST, *WALK, "trainer.epochs=2"), epoch_hooks=[hook])
    assert hook.pruned_at == 3  # judged from step 3: fold 2's first epoch
    assert sorted(study.trials[0].intermediate_values) == [1, 2, 3]
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(result.run_id, "fold_val_rmse")] == [1, 2]
    assert result.metrics["epochs_run"] == 3  # fold 1 in full, one epoch of fold 2, no fold 3


def test_with_early_stopping_the_final_metrics_follow_the_last_epoch_logged():
    """Folds stopped early leave gaps in the steps: the final val_rmse is the last fold's last
    epoch's point (step 8), not a point after the summed epochs (6), where MLflow would show an
    epoch's; one point per epoch run."""
    result = run_experiment(tiny_config(*FAST, *WALK, "trainer.epochs=3", "trainer.early_stopping.enabled=true",
                                        "trainer.early_stopping.patience=1",
                                        "trainer.early_stopping.min_delta=1e9"))
    assert result.metrics["epochs_run"] == 6  # two epochs in each fold
    client = MlflowClient()
    curve = client.get_metric_history(result.run_id, "val_rmse")
    assert [m.step for m in curve] == [1, 2, 4, 5, 7, 8]
    assert client.get_run(result.run_id).data.metrics["val_rmse"] == curve[-1].value == result.metrics["val_rmse"]
    assert [m.step for m in client.get_metric_history(result.run_id, "test_rmse")] == [8]
