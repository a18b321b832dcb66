"""The one function that turns a config into a result: a single run, a variant in a multirun,
a sweep trial and a rerun all call `run_experiment`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from lstmlab import interrupts, runtime
from lstmlab.tracking.open import check_store, use_store

if TYPE_CHECKING:  # pandas and Keras: imported where they are used, after the checks
    import keras

    from lstmlab.pipeline.claim import Claim
    from lstmlab.pipeline.data import Dataset
    from lstmlab.pipeline.evaluation import FoldForecast
    from lstmlab.pipeline.train import Fit

# Called after each epoch with (step, logs incl. val_rmse); returning True stops training (and,
# in walk-forward, the folds after it). The step: pipeline.train.epoch_step. Plain callables, not
# Keras callbacks, so callers (the sweep) need not import Keras.
EpochHook = Callable[[int, dict[str, Any]], bool]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What `run_experiment` returns: the MLflow run that holds the result, its final metrics
    (lstmlab.names.FINAL_METRICS, price units), and whether that run was reused rather than
    trained (`tracking.skip_finished`)."""

    run_id: str
    metrics: Mapping[str, float]
    reused: bool = False


def run_experiment(
    cfg: DictConfig,
    epoch_hooks: Sequence[EpochHook] = (),
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> RunResult:
    """Train, evaluate and record one run; returns the run and its final metrics; with
    `tracking.skip_finished`, those of a FINISHED run of the same configuration and data when
    there is one (`reused`), also of one another command was training at the same time
    (pipeline.claim: it is waited for, and trained here only if it does not finish).

    Everything a user can get wrong is checked before the MLflow run starts, so a bad config
    leaves no run behind; a failure after the start ends the run as FAILED. With
    `evaluation=walk_forward` every fold trains a fresh model from the same seed.
    """
    from lstmlab.pipeline.checks import check_activation

    skip_finished = bool(cfg.tracking.get("skip_finished"))
    with interrupts.at_once():  # nothing is written before the run: a Ctrl-C stops at once
        splits = preflight(cfg)
        runtime.use_backend(cfg.trainer.backend)  # before the pipeline modules below import Keras
        if skip_finished:  # before Keras loads: a reused job costs a query
            found = _finished(cfg, splits[0].sha256, "this configuration has a FINISHED run on these data")
            if found is not None:
                return found
        runtime.import_keras()  # TensorFlow's start-up lines hidden; before the modules below
        from lstmlab.pipeline import train

        check_activation(cfg.model.activation)
        train.optimizer_and_loss(cfg.optimizer, cfg.loss)  # a bad optimizer or loss: no run yet
    experiment = use_store(cfg.tracking)  # only now: a config or data error leaves no store behind
    interrupts.check()  # a safe point: before the run starts
    if not skip_finished:
        return _record(cfg, splits, epoch_hooks, run_name, tags, parent_run_id)

    from lstmlab.pipeline.claim import Claim, Yielded, config_key
    from lstmlab.pipeline.reuse import finished_run

    def finished() -> str | None:  # looked up once more once the claim is won (said once already)
        found = finished_run(cfg, splits[0].sha256, say_why_not=False)
        return found.run_id if found is not None else None

    claim = Claim(experiment.experiment_id, config_key(cfg, splits[0].sha256), finished)
    while True:  # another command's twin may hold the configuration: wait for it, reuse its run
        try:
            return _record(cfg, splits, epoch_hooks, run_name, tags, parent_run_id, claim)
        except Yielded as yielded:
            if claim.wait_for(yielded.holder):
                found = _finished(cfg, splits[0].sha256, "trained by another command at the same time")
                if found is not None:
                    return found
            # it ended otherwise (stopped, failed, its process gone): claim the configuration again


def _finished(cfg: DictConfig, data_sha256: str, why: str) -> RunResult | None:
    """The FINISHED run of the job's configuration and data (tracking.skip_finished), said in one line."""
    from lstmlab.pipeline.reuse import finished_run

    found = finished_run(cfg, data_sha256)
    if found is None:
        return None
    log.info("reused run %s (%s): %s; not trained again (tracking.skip_finished=true)", found.run_id,
             found.run_name, why)
    return RunResult(found.run_id, found.metrics, reused=True)


def _record(cfg: DictConfig, splits: list[Dataset], epoch_hooks: Sequence[EpochHook], run_name: str | None,
            tags: dict[str, str] | None, parent_run_id: str | None, claim: Claim | None = None) -> RunResult:
    """Train every fold in one MLflow run, evaluate, record (`claim`: see run_experiment)."""
    import mlflow

    from lstmlab.pipeline import evaluation, track, train

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
        metrics, predictions = evaluation.summarize(cfg, folds)
        # The last fold's model and scalers: trained on the latest rows, what `forecast` applies.
        track.log_results(cfg, folds[-1].data, model, histories, predictions, metrics, curves, hooks.last_step)
    return RunResult(run.info.run_id, metrics)


def preflight(cfg: DictConfig) -> list[Dataset]:
    """What a job checks before any framework is imported or anything is written, in one place
    for a run and for a sweep (whose sweeper runs it on every job config before the study opens):
    every config value, then the data and its evaluation splits, then whether a tracking server
    answers. A bad one is one line and leaves no run, store or trial behind. Only what needs Keras
    (the activation's name, the optimizer's and loss's arguments) is checked later, by the job,
    once its backend is chosen. The splits (the datasets to train on) are kept per process."""
    from lstmlab.console import quiet_environment
    from lstmlab.pipeline import evaluation
    from lstmlab.pipeline.checks import check_config

    with interrupts.at_once():  # it reads only: a Ctrl-C stops it at once, however large the data
        check_config(cfg)  # every value, before data, framework or run
        quiet_environment()  # before TensorFlow or MLflow are imported
        splits = evaluation.splits(cfg)  # data errors are found before the seconds a framework import costs
        check_store(cfg.tracking)  # so is a tracking server that does not answer (nothing written)
    return splits


def _train_fold(cfg: DictConfig, data: Dataset, callbacks: list[Any]) -> tuple[keras.Model, Fit, FoldForecast]:
    """A fresh model trained on one fold (or the holdout split) from the same seed."""
    import keras

    from lstmlab.pipeline import train
    from lstmlab.pipeline.evaluation import FoldForecast
    from lstmlab.pipeline.model import build_model

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
