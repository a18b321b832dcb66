"""The one function that turns a config into a result: a single run, a variant in a multirun,
a sweep trial and a rerun all call `run_experiment`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from lstmlab import interrupts
from lstmlab.runtime import check_store, use_backend

if TYPE_CHECKING:
    from lstmlab.pipeline.data import Dataset


def check_config(cfg: DictConfig) -> Dataset:
    """Everything in the config a user can get wrong, checked before any run starts; the
    prepared data. (A read-only store is found when the run opens it, before it starts.)

    A sweep calls it once per distinct job config before its study opens, so a mistyped
    data.path is one line and no trial (lstmlab/sweep/preflight.py).
    """
    from lstmlab.pipeline.data import prepare

    use_backend(cfg.trainer.backend)  # before the first Keras import below
    data = prepare(cfg.data)  # data errors are found before the seconds a framework import costs
    check_store(cfg.tracking)  # so is a tracking server that does not answer (nothing written)
    from lstmlab.pipeline import train
    from lstmlab.pipeline.model import check_model_config

    check_model_config(cfg.model)
    train.check_trainer_config(cfg.trainer)
    return data


def run_experiment(
    cfg: DictConfig,
    callbacks: Sequence = (),
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> dict[str, float]:
    """Train, evaluate and record one run; returns its final metrics (and `run_id`).

    Everything a user can get wrong is checked before the MLflow run starts, so a bad config
    leaves no run behind; a failure after the start ends the run as FAILED.
    """
    data = check_config(cfg)
    import keras

    from lstmlab.pipeline import evaluate, track, train
    from lstmlab.pipeline.model import build_model

    keras.backend.clear_session()  # fresh layer names and graph state for every run in a process
    interrupts.check()  # a Ctrl-C that came while the last run's objects were collected
    train.seed_everything(cfg.trainer.seed)
    optimizer, loss = train.optimizer_and_loss(cfg.optimizer, cfg.loss)
    with track.start_run(cfg, data, run_name=run_name, tags=tags, parent_run_id=parent_run_id) as run:
        model = build_model(cfg.model, cfg.data.lookback, len(data.features))
        model.compile(optimizer=optimizer, loss=loss)
        result = train.fit(
            model, data, cfg.trainer,
            callbacks=[track.epoch_metrics(run.info.run_id), interrupts.keras_callback(), *callbacks]
        )
        val_predicted = data.to_price(train.predict(model, data.val.x))
        test_predicted = data.to_price(train.predict(model, data.test.x))
        metrics = {
            "val_rmse": evaluate.rmse(data.val.actual, val_predicted),
            **evaluate.test_metrics(data.test, test_predicted),
            "train_seconds": result.seconds,
            "epochs_run": float(result.epochs_run),
        }
        predictions = evaluate.predictions_table(data.test, test_predicted)
        track.log_results(cfg, data, model, result.history, predictions, metrics)
    return {**metrics, "run_id": run.info.run_id}
