"""run_experiment end to end on a real MLflow store: determinism, metrics, artifacts, failures."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import tiny_config
from lstmlab.errors import LstmlabError
from lstmlab.names import FINAL_METRICS
from lstmlab.pipeline.experiment import run_experiment

pytestmark = pytest.mark.slow

ARTIFACTS = {"config.yaml", "scaler.json", "predictions.csv", "predictions.png", "loss.png"}
SMALL = "model.units=[8,8]"


def test_same_config_and_seed_give_identical_metrics_and_another_seed_does_not():
    first = run_experiment(tiny_config(SMALL))
    second = run_experiment(tiny_config(SMALL))
    other_seed = run_experiment(tiny_config(SMALL, "trainer.seed=7"))
    timing = {"train_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in timing} == \
        {k: v for k, v in second.metrics.items() if k not in timing}
    assert first.metrics["test_rmse"] != other_seed.metrics["test_rmse"]


def test_a_run_records_everything_design_lists():
    result = run_experiment(tiny_config(SMALL, "trainer.epochs=3", "tracking.log_model=true"))
    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "baseline"
    assert set(result.metrics) == set(FINAL_METRICS)  # the names compare and rerun read
    assert set(FINAL_METRICS) <= run.data.metrics.keys()
    assert all(math.isfinite(run.data.metrics[name]) for name in FINAL_METRICS)
    assert run.data.metrics["epochs_run"] == 3
    tags = run.data.tags
    assert tags["variant"] == "baseline" and tags["baseline"] == "true"
    assert tags["keras_backend"] == "tensorflow" and len(tags["data_sha256"]) == 64
    assert "mlflow.source.name" in tags
    params = run.data.params
    assert params["model.units"] == "[8, 8]" and params["optimizer.name"] == "adam"
    assert params["trainer.seed"] == "42" and params["data.lookback"] == "8"
    for name in ("train_loss", "val_loss"):
        history = client.get_metric_history(run.info.run_id, name)
        assert [m.step for m in history] == [1, 2, 3]  # epochs as the console numbers them
    val_rmse = client.get_metric_history(run.info.run_id, "val_rmse")
    assert [m.step for m in val_rmse] == [1, 2, 3]  # one point per epoch run, no step after the last
    assert run.data.metrics["val_rmse"] == val_rmse[-1].value == result.metrics["val_rmse"]  # the last is the final
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_rmse")] == [3]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= ARTIFACTS
    model = mlflow.keras.load_model(f"runs:/{run.info.run_id}/model")
    assert model.count_params() > 0
    # two of the run's own scaled windows as its input example, and what the scaling is, said with it
    (logged,) = mlflow.search_logged_models(output_format="list")
    info = mlflow.models.get_model_info(logged.model_uri)
    example = mlflow.models.Model.load(logged.model_uri).load_input_example()
    assert info.saved_input_example_info["type"] == "ndarray" and example.shape == (2, 8, 1)
    assert example.min() >= 0 and example.max() <= 1  # MinMax-scaled on the training part
    assert info.metadata["units"] == logged.tags["mlflow.note.content"]
    assert "scaled" in info.metadata["units"] and "scaler.json" in info.metadata["units"]
    served = mlflow.pyfunc.load_model(logged.model_uri).predict(example)  # the example serves
    assert served.shape == (2, 1) and np.isfinite(served).all()


def test_logged_metrics_agree_with_the_logged_predictions():
    result = run_experiment(tiny_config(SMALL))
    path = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="predictions.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == ["date", "actual", "predicted", "naive", "fold"] and set(table["fold"]) == {1}
    from lstmlab.comparison.predictions import parse  # what compare reads: the fold kept, the RMSE checked

    assert set(parse(Path(path).read_text(), result.metrics["test_rmse"])["fold"]) == {1}
    error = table["predicted"] - table["actual"]
    naive_error = table["naive"] - table["actual"]
    rmse = float(np.sqrt(np.mean(error**2)))
    naive_rmse = float(np.sqrt(np.mean(naive_error**2)))
    assert result.metrics["test_rmse"] == pytest.approx(rmse, rel=1e-6)
    assert result.metrics["naive_test_rmse"] == pytest.approx(naive_rmse, rel=1e-6)
    assert result.metrics["test_mae"] == pytest.approx(float(np.mean(np.abs(error))), rel=1e-6)
    assert result.metrics["test_skill"] == pytest.approx(1 - rmse / naive_rmse, rel=1e-6)
    moved = np.sign(table["actual"] - table["naive"])
    assert result.metrics["test_directional_accuracy"] == pytest.approx(
        float(np.mean(np.sign(table["predicted"] - table["naive"]) == moved)))


def test_the_variant_name_names_the_run_and_only_the_baseline_is_tagged_baseline():
    result = run_experiment(tiny_config("variant=tanh", SMALL))
    run = mlflow.get_run(result.run_id)
    assert run.info.run_name == "tanh"
    assert run.data.tags["variant"] == "tanh" and run.data.tags["baseline"] == "false"
    assert run.data.params["model.activation"] == "tanh"


def test_diverging_training_stops_and_the_run_ends_failed():
    cfg = tiny_config(SMALL, "optimizer=sgd", "optimizer.learning_rate=1e12", "trainer.epochs=3")
    with pytest.raises(LstmlabError, match="training diverged"):
        run_experiment(cfg)
    (run,) = MlflowClient().search_runs([mlflow.get_experiment_by_name("lstmlab").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.metrics.get("epochs_run") is None


def test_bad_config_values_leave_no_run_behind():
    for override in ("model.dropout=2", "trainer.batch_size=0", "data.lookback=500"):
        with pytest.raises(LstmlabError):
            run_experiment(tiny_config(override))
    experiment = mlflow.get_experiment_by_name("lstmlab")
    assert experiment is None or not MlflowClient().search_runs([experiment.experiment_id])


def test_early_stopping_on_val_rmse_ends_training_early():
    cfg = tiny_config(SMALL, "trainer.epochs=6", "trainer.early_stopping.enabled=true",
                      "trainer.early_stopping.patience=1", "trainer.early_stopping.min_delta=1e9")
    result = run_experiment(cfg)
    assert result.metrics["epochs_run"] == 2  # the first epoch sets the best; no later one beats it by 1e9
    # The best epoch's weights are restored: its val_rmse is the final one, carried by the last
    # epoch's point (MLflow shows a metric's highest step); one point per epoch all the same.
    client = MlflowClient()
    curve = client.get_metric_history(result.run_id, "val_rmse")
    assert [m.step for m in curve] == [1, 2] and [m.step for m in client.get_metric_history(
        result.run_id, "train_loss")] == [1, 2]
    assert curve[-1].value == client.get_run(result.run_id).data.metrics["val_rmse"] == result.metrics["val_rmse"]


def test_mlflow_keras_still_cannot_log_an_input_example_itself(tmp_path):
    """track.KERAS_FLAVOR makes the model's folder before mlflow.keras saves the example into it
    (mlflow/mlflow#16183). When this fails, MLflow has fixed it: log with mlflow.keras.log_model."""
    import keras

    model = keras.Sequential([keras.Input((3, 1)), keras.layers.Dense(1)])
    with pytest.raises(FileNotFoundError, match="input_example.json"):
        mlflow.keras.save_model(model, path=str(tmp_path / "model"), input_example=np.zeros((1, 3, 1), "float32"))
