"""Track: everything a run leaves in MLflow (the names: docs/contracts.md, "A run in MLflow")."""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import mlflow
import mlflow.keras
import numpy as np
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.names import CONFIG_ARTIFACT, DATA_TAG, EPOCH_METRICS, MODEL_NAME, PREDICTIONS_ARTIFACT, SCALER_ARTIFACT
from lstmlab.pipeline.claim import Claim, Yielded
from lstmlab.pipeline.data import Dataset, data_name, data_source
from lstmlab.pipeline.keras_side import plots
from lstmlab.pipeline.keras_side.train import predict
from lstmlab.pipeline.params import run_config, run_params
from lstmlab.pipeline.scalers import to_json
from lstmlab.tracking import faults
from lstmlab.tracking.ending import end_run
from lstmlab.tracking.orphans import owner_tags


def run_tags(cfg: DictConfig, data: Dataset) -> dict[str, str]:
    variant = cfg.tracking.variant
    return {
        "variant": variant,
        "baseline": str(variant == "baseline").lower(),
        DATA_TAG: data.sha256,
        "keras_backend": keras.backend.backend(),
    }


@contextmanager
def start_run(
    cfg: DictConfig,
    data: Dataset,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    claim: Claim | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run with the config's params and tags; FAILED if the body raises, KILLED if it
    is interrupted (Ctrl-C, SIGTERM). A store that fails (a server gone, a full disk, a lock)
    stops the run with one line (a LstmlabError): what failed, the run, and that it is closed,
    now or by the next command (see lstmlab.tracking.ending). With a `claim`
    (tracking.skip_finished), a run whose configuration another command is training is
    deleted as soon as it is made, and the claim's Yielded raised."""
    name = run_name or cfg.tracking.run_name or cfg.tracking.variant
    all_tags = {**run_tags(cfg, data), **owner_tags(), **(tags or {}), **(claim.tags if claim else {})}
    with faults.one_line(mlflow.get_tracking_uri(), after="; no run was started"):
        run = mlflow.start_run(
            run_name=name, tags=all_tags, parent_run_id=parent_run_id, nested=parent_run_id is not None)
    run_id = run.info.run_id
    try:
        if claim is not None:
            claim.hold(run_id)
        mlflow.log_params(run_params(cfg))
        log_dataset(cfg, data)
        yield run
    except Yielded:  # never trained: no trace of it among the runs
        end_run(run_id, "KILLED")
        mlflow.MlflowClient().delete_run(run_id)
        raise
    except KeyboardInterrupt:
        end_run(run_id, "KILLED")  # a store that fails then: the run is closed later, the stop is said
        raise
    except BaseException as error:
        fault = end_run(run_id, "FAILED", after=error)
        if fault is not None:
            raise LstmlabError(fault.line()) from error
        raise
    fault = end_run(run_id, "FINISHED")
    if fault is not None:
        raise LstmlabError(fault.line())


DIGEST_CHARS = 12  # MLflow keeps at most 36; the tag data_sha256 has all 64, and starts the same


def log_dataset(cfg: DictConfig, data: Dataset) -> None:
    """The data as the run's MLflow dataset input (the UI's Dataset column): name, source, and
    the data fingerprint as digest, so runs on the same data show the same dataset."""
    with warnings.catch_warnings():
        # A plain path or name fits both of MLflow's local sources ("" and file:), which it
        # says in a UserWarning before taking the local one: the right one for us.
        warnings.simplefilter("ignore", UserWarning)
        dataset = from_pandas(
            data.table.reset_index(), source=data_source(cfg.data), targets=data.target,
            name=data_name(cfg.data), digest=data.sha256[:DIGEST_CHARS],
        )
    log_input(dataset, context="training")


# How SQLite, PostgreSQL and MySQL say that a row with this key exists (MLflow passes the text on).
DUPLICATE_KEY = ("UNIQUE constraint failed", "duplicate key value violates unique constraint", "Duplicate entry")


def log_input(dataset: mlflow.data.Dataset, context: str, tries: int = 3) -> None:
    """`mlflow.log_input`, tried again when another run created the same dataset a moment before.

    MLflow's SQL store looks the dataset up, then inserts it, so runs that start together on an
    experiment that lacks it (two `lstmlab train`, sweep workers on one server) all insert it and
    all but one fail on the table's key. The failed call's transaction is rolled back whole and
    the next lookup finds the row, so trying again is safe; MLflow does not retry it itself."""
    for attempt in range(1, tries + 1):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException as error:
            if attempt == tries or not any(text in str(error) for text in DUPLICATE_KEY):
                raise


def _now_ms() -> int:
    return int(time.time() * 1000)  # MLflow's metric timestamps


class EpochCurves:
    """An epoch hook (train.EpochHooks) logging train_loss, val_loss and val_rmse: one point per
    epoch run, at the epoch's step (pipeline.epochs.epoch_step), one MLflow call per epoch.

    val_rmse is also the run's final metric, and MLflow shows (and `search_runs` returns) a
    metric's point at its highest step: so the last epoch's point must carry the final value,
    with no step after it (an epoch that never ran). In a holdout run whose weights stay those of
    its last epoch, that point's own value is the final one. When they differ (early stopping
    restores the best epoch's weights; walk-forward's final is the mean of its folds') each
    val_rmse point is held back until the next epoch ends, and `close(final)` writes the last
    one with the final value.
    """

    def __init__(self, run_id: str, hold_back: bool) -> None:
        self.run_id = run_id
        self.hold_back = hold_back
        self.held: Metric | None = None

    def __call__(self, step: int, logs: dict[str, Any]) -> bool:
        now = _now_ms()
        points = [Metric(name, float(logs[key]), now, step) for key, name in EPOCH_METRICS.items() if key in logs]
        if self.hold_back:
            points = [p for p in points if p.key != "val_rmse"] + ([self.held] if self.held else [])
            self.held = Metric("val_rmse", float(logs["val_rmse"]), now, step) if "val_rmse" in logs else None
        mlflow.MlflowClient().log_batch(self.run_id, metrics=points)
        return False

    def close(self, final: float | None = None) -> None:
        """The held-back val_rmse point, with `final` (the run's final val_rmse) as its value when
        given, else its own (a run stopped before its end)."""
        if self.held is None:
            return
        point = self.held if final is None else Metric("val_rmse", final, _now_ms(), self.held.step)
        self.held = None
        mlflow.MlflowClient().log_batch(self.run_id, metrics=[point])

    def close_after(self, error: BaseException) -> None:
        """`close()` for a run that `error` stops, unless the store is what failed (a write then
        would only wait for it again)."""
        if isinstance(error, Exception) and faults.find(error, mlflow.get_tracking_uri()) is not None:
            return
        self.close()


def log_results(
    cfg: DictConfig,
    data: Dataset,
    model: keras.Model,
    histories: list[dict[str, list[float]]],
    predictions: pd.DataFrame,
    metrics: dict[str, float],
    curves: EpochCurves,
    step: int,
) -> None:
    """Final metrics and every artifact (docs/contracts.md, "Artifacts"), written to a temp dir and logged at once.

    `histories`: one per fold (one for holdout). Final metrics go at `step`, the last epoch's;
    val_rmse's final value is the last point of its curve (`curves`).
    """
    curves.close(final=metrics["val_rmse"])
    mlflow.log_metrics({name: value for name, value in metrics.items() if name != "val_rmse"}, step=step)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / CONFIG_ARTIFACT).write_text(OmegaConf.to_yaml(run_config(cfg)))
        scalers = {"features": data.feature_scaler, "target": data.target_scaler}
        (folder / SCALER_ARTIFACT).write_text(to_json(scalers))  # numbers, not a pickle: loads without running code
        predictions.to_csv(folder / PREDICTIONS_ARTIFACT)
        title = f"{cfg.tracking.variant}: test RMSE {metrics['test_rmse']:.2f} vs naive {metrics['naive_test_rmse']:.2f}"
        if predictions["fold"].nunique() > 1:
            title += f" (walk-forward, {predictions['fold'].nunique()} folds pooled)"
        plots.plot_predictions(predictions, title, folder / "predictions.png")
        plots.plot_losses(histories, str(cfg.loss.name), folder / "loss.png")
        mlflow.log_artifacts(str(folder))
    if cfg.tracking.log_model:
        log_model(model, data.test.x[:2])


# What the model maps, in units: said in its MLmodel (`metadata`) and on its page in the UI.
MODEL_UNITS = ("Input: windows of data.lookback days × the run's features, each feature scaled by the run's "
               "feature scaler (MinMax by default, fitted on the training part). Output: the next day's "
               "target scaled by its target scaler: a price, or its log return with "
               "data.target_transform=log_return. Both scalers are the run's scaler.json (numbers); "
               "`lstmlab forecast RUN_ID` scales a price table in and turns the output back into a price.")


def log_model(model: keras.Model, example: np.ndarray) -> None:
    """Keras flavor with explicit requirements (MLflow's inference would cost seconds per run),
    `example` (a couple of the run's own scaled windows) as its input example and, with the
    model's outputs for them, its signature: windows (lookback, features) in, one scaled value
    out. What the scaling is stays with the model (MODEL_UNITS)."""
    signature = infer_signature(example, predict(model, example))

    backend = keras.backend.backend()
    requirements = [f"keras=={version('keras')}", f"{backend}=={version(backend)}"]
    # mlflow.keras.log_model itself, but through KERAS_FLAVOR (see there) so that the example is saved.
    # Not validated by serving it: MLflow does that with Keras' predict in a thread of its own,
    # whose progress bar reaches the console whatever this thread's Keras logging says (and costs
    # ~0.3 s a run); the tests load the logged model and predict the example instead.
    Model.log(artifact_path=None, name=MODEL_NAME, flavor=KERAS_FLAVOR, model=model, signature=signature,
              input_example=example, pip_requirements=requirements, metadata={"units": MODEL_UNITS},
              tags={"mlflow.note.content": MODEL_UNITS}, validate_serving_input=False)


def _save_keras_model(path: str, validate_serving_input: bool = False, **kwargs: Any) -> None:
    """mlflow.keras.save_model into a folder made first; Model.log hands every keyword of its own
    to the flavor, `validate_serving_input` included, which save_model does not take."""
    os.makedirs(path, exist_ok=True)
    mlflow.keras.save_model(path=path, **kwargs)


# mlflow.keras as `Model.log` takes a flavor, saving into a folder made first: mlflow.keras.save_model
# writes the input example before it makes the model's folder, so `log_model` with an example fails
# (FileNotFoundError; mlflow/mlflow#16183, open). tests/pipeline/test_experiment.py fails once MLflow
# fixes it: then `mlflow.keras.log_model(..., input_example=example)` again.
KERAS_FLAVOR = SimpleNamespace(__name__=mlflow.keras.__name__, save_model=_save_keras_model)
