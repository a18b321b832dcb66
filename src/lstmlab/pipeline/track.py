"""Track: everything a run leaves in MLflow (names fixed by DESIGN.md).

Keras is imported inside the functions that need it: the sweeper's process imports this module
before any trial has chosen the Keras backend, and importing Keras would fix it to TensorFlow.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import mlflow
from omegaconf import DictConfig, OmegaConf

from lstmlab.pipeline import plots
from lstmlab.pipeline.data import Dataset
from lstmlab.records.names import CONFIG_ARTIFACT, MODEL_NAME, SCALER_ARTIFACT
from lstmlab.runtime import use_store

if TYPE_CHECKING:
    import keras


def flatten(node: object, prefix: str = "") -> dict[str, str]:
    """Nested config → {"model.units": "[50, 50]", ...}: MLflow params the UI can line up."""
    if isinstance(node, dict):
        flat: dict[str, str] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    value = json.dumps(node) if isinstance(node, list) else str(node)
    return {prefix.rstrip("."): value}


def run_params(cfg: DictConfig) -> dict[str, str]:
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("trial", None)  # how a sweep reached this run, not how the run is configured
    return flatten(container)


def run_tags(cfg: DictConfig, data: Dataset) -> dict[str, str]:
    import keras

    variant = cfg.tracking.variant
    return {
        "variant": variant,
        "baseline": str(variant == "baseline").lower(),
        "data_sha256": data.sha256,
        "keras_backend": keras.backend.backend(),
    }


@contextmanager
def start_run(
    cfg: DictConfig,
    data: Dataset,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run with the config's params and tags; FAILED if the body raises."""
    use_store(cfg.tracking)
    name = run_name or cfg.tracking.run_name or cfg.tracking.variant
    all_tags = {**run_tags(cfg, data), **(tags or {})}
    with mlflow.start_run(
        run_name=name, tags=all_tags, parent_run_id=parent_run_id, nested=parent_run_id is not None
    ) as run:
        mlflow.log_params(run_params(cfg))
        yield run


EPOCH_METRICS = {"loss": "train_loss", "val_loss": "val_loss", "val_rmse": "val_rmse"}


def epoch_metrics(run_id: str, prefix: str = "") -> keras.callbacks.Callback:
    """A Keras callback logging train_loss, val_loss and val_rmse per epoch, one MLflow call each;
    `prefix` names a walk-forward fold's curves (`fold2/val_rmse`)."""
    import keras

    class EpochMetrics(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            values = {prefix + name: float(logs[key]) for key, name in EPOCH_METRICS.items() if key in logs}
            mlflow.log_metrics(values, step=epoch, run_id=run_id)

    return EpochMetrics()


def log_results(
    cfg: DictConfig,
    data: Dataset,
    model: keras.Model,
    histories: list[dict[str, list[float]]],
    predictions,
    metrics: dict[str, float],
) -> None:
    """Final metrics and every artifact of DESIGN.md, written to a temp dir and logged at once.

    `histories`: one per fold (one for holdout). Final metrics go one step past the last epoch:
    MLflow shows a metric's highest step, and the final val_rmse (of the restored best weights,
    with early stopping) must be the one shown.
    """
    mlflow.log_metrics(metrics, step=int(metrics["epochs_run"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / CONFIG_ARTIFACT).write_text(OmegaConf.to_yaml(config_record(cfg), resolve=True))
        joblib.dump({"features": data.feature_scaler, "target": data.target_scaler},
                    folder / SCALER_ARTIFACT)
        predictions.to_csv(folder / "predictions.csv")
        title = f"{cfg.tracking.variant}: test RMSE {metrics['test_rmse']:.2f} vs naive {metrics['naive_test_rmse']:.2f}"
        if "fold" in predictions:
            title += f" (walk-forward, {predictions['fold'].nunique()} folds pooled)"
        plots.plot_predictions(predictions, title, folder / "predictions.png")
        plots.plot_losses(histories, str(cfg.loss.name), folder / "loss.png")
        mlflow.log_artifacts(str(folder))
    if cfg.tracking.log_model:
        log_model(model)


def config_record(cfg: DictConfig) -> DictConfig:
    """The resolved config a rerun starts from, without the sweep that launched it."""
    record = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    record.trial = None
    return record


def log_model(model: keras.Model) -> None:
    """Keras flavor with explicit requirements: MLflow's inference would cost seconds per run."""
    from importlib.metadata import version

    import keras
    import mlflow.keras

    backend = keras.backend.backend()
    requirements = [f"keras=={version('keras')}", f"{backend}=={version(backend)}"]
    mlflow.keras.log_model(model, name=MODEL_NAME, pip_requirements=requirements)
