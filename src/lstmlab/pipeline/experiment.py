"""The one function that turns a config into a result: a single run, a variant in a multirun,
a sweep trial and a rerun all call `run_experiment`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omegaconf import DictConfig

from lstmlab import runtime

# Called after each epoch with (epoch, logs incl. val_rmse); returning True stops training.
# Plain callables, not Keras callbacks, so callers (the sweep) need not import Keras.
EpochHook = Callable[[int, dict], bool]


def run_experiment(
    cfg: DictConfig,
    epoch_hooks: Sequence[EpochHook] = (),
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> dict[str, float]:
    """Train, evaluate and record one run; returns its final metrics (and `run_id`).

    Everything a user can get wrong is checked before the MLflow run starts, so a bad config
    leaves no run behind; a failure after the start ends the run as FAILED.
    """
    from lstmlab.pipeline.checks import check_activation, check_config
    from lstmlab.pipeline.data import prepare

    check_config(cfg)  # every value, before data, framework or run: a bad one leaves nothing behind
    runtime.use_backend(cfg.trainer.backend)  # before the pipeline modules below import Keras
    data = prepare(cfg.data)  # data errors are found before the seconds a framework import costs
    keras = runtime.import_keras()  # TensorFlow's start-up lines hidden; before the modules below

    from lstmlab.pipeline import evaluate, track, train
    from lstmlab.pipeline.model import build_model

    check_activation(cfg.model.activation)
    keras.backend.clear_session()  # fresh layer names and graph state for every run in a process
    train.seed_everything(cfg.trainer.seed)
    optimizer, loss = train.optimizer_and_loss(cfg.optimizer, cfg.loss)
    runtime.use_store(cfg.tracking)  # only now: a config or data error leaves no store behind
    with track.start_run(cfg, data, run_name=run_name, tags=tags, parent_run_id=parent_run_id) as run:
        model = build_model(cfg.model, cfg.data.lookback, len(data.features))
        model.compile(optimizer=optimizer, loss=loss)
        result = train.fit(
            model, data, cfg.trainer,
            callbacks=[track.EpochMetrics(run.info.run_id), train.EpochHooks(epoch_hooks)],
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
