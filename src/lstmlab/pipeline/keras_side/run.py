"""One run on the Keras side: what only Keras can check, then every fold trained from the same
seed, evaluated and recorded in one MLflow run (run_experiment calls both)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import mlflow
from omegaconf import DictConfig

from lstmlab import interrupts
from lstmlab.pipeline import evaluation
from lstmlab.pipeline.claim import Claim
from lstmlab.pipeline.data import Dataset
from lstmlab.pipeline.epochs import EpochHook
from lstmlab.pipeline.keras_side import track, train
from lstmlab.pipeline.keras_side.model import build_model, check_activation
from lstmlab.pipeline.metrics import FoldForecast, summarize

log = logging.getLogger(__name__)


def check(cfg: DictConfig) -> None:
    """The activation's name and the optimizer's and loss's arguments: a bad one is one line,
    before any run starts (pipeline.checks checked every other value)."""
    check_activation(cfg.model.activation)
    train.optimizer_and_loss(cfg.optimizer, cfg.loss)


def record(cfg: DictConfig, splits: list[Dataset], epoch_hooks: Sequence[EpochHook], run_name: str | None,
           tags: dict[str, str] | None, parent_run_id: str | None, claim: Claim | None = None) -> tuple[str, dict[str, float]]:
    """Train every fold in one MLflow run, evaluate, record; returns the run id and its final
    metrics (`claim`: see run_experiment)."""
    walk_forward = evaluation.method(cfg) == "walk_forward"
    with track.start_run(cfg, splits[0], run_name=run_name, tags=tags, parent_run_id=parent_run_id,
                         claim=claim) as run:
        early = cfg.trainer.early_stopping
        # The final val_rmse differs from the last epoch's own when weights are restored or folds averaged.
        curves = track.EpochCurves(run.info.run_id, hold_back=len(splits) > 1 or (
            early.enabled and early.restore_best_weights))
        folds, histories = [], []
        try:
            for number, data in enumerate(splits, start=1):
                if walk_forward:
                    log.info("fold %d/%d: trains on %d days to %s, tests %s … %s", number, len(splits),
                             len(data.train.y) + len(data.val.y), data.val.dates[-1].date(),
                             data.test.dates[0].date(), data.test.dates[-1].date())
                hooks = train.EpochHooks([curves, *epoch_hooks], fold=number, epochs=cfg.trainer.epochs)
                model, fitted, fold = _train_fold(cfg, data, [hooks])
                folds.append(fold)
                histories.append(fitted.history)
                if walk_forward:
                    mlflow.log_metrics(fold.metrics(), step=number)
                if hooks.stopped:  # e.g. a pruned trial: no further fold
                    break
        except BaseException as error:
            curves.close_after(error)  # the epochs it trained keep their points
            raise
        metrics, predictions = summarize(cfg, folds)
        # The last fold's model and scalers: trained on the latest rows, what `forecast` applies.
        track.log_results(cfg, folds[-1].data, model, histories, predictions, metrics, curves, hooks.last_step)
    return run.info.run_id, metrics


def _train_fold(cfg: DictConfig, data: Dataset, callbacks: list[Any]) -> tuple[keras.Model, train.Fit, FoldForecast]:
    """A fresh model trained on one fold (or the holdout split) from the same seed."""
    keras.backend.clear_session()  # fresh layer names and graph state for every model in a process
    interrupts.check()  # a safe point: before a model is built
    train.seed_everything(cfg.trainer.seed)
    optimizer, loss = train.optimizer_and_loss(cfg.optimizer, cfg.loss)
    model = build_model(cfg.model, cfg.data.lookback, len(data.features))
    model.compile(optimizer=optimizer, loss=loss)
    fitted = train.fit(model, data, cfg.trainer, callbacks=callbacks)
    interrupts.check()  # one in the last batch: not evaluated, not uploaded
    fold = FoldForecast(
        data=data,
        val_predicted=data.to_price(train.predict(model, data.val.x), data.val.previous),
        test_predicted=data.to_price(train.predict(model, data.test.x), data.test.previous),
        seconds=fitted.seconds,
        epochs_run=fitted.epochs_run,
    )
    return model, fitted, fold
