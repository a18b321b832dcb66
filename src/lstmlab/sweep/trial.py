"""Trial: one sweep job connected to its Optuna trial through the shared study storage.

The sweeper (src/hydra_plugins/lstmlab_optuna_sweeper) fills the config's `trial` node with the
study name, the storage URL, the trial number, the MLflow parent run and the pruner. The job
reaches its trial through that storage, never through objects in the sweeper's process, so it
works under any Hydra launcher (local, joblib, a cluster). Each epoch's `val_rmse` is reported
to the trial; when the pruner says so, training stops, the run is recorded as usual and tagged
`state=pruned`, and `optuna.TrialPruned` tells the sweeper. The sweeper records the final state.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lstmlab.errors import LstmlabError
from lstmlab.sweep.link import TrialLink
from lstmlab.sweep.pruners import make_pruner


def connect(link: TrialLink) -> Any:
    """The running `optuna.Trial` behind `link`, loaded from the shared storage."""
    import optuna
    import sqlalchemy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        # No connection pool: jobs often run inside the sweeper's process, one storage each,
        # and pooled connections would pile up there (a PostgreSQL server allows ~100).
        storage = optuna.storages.RDBStorage(
            link.storage, engine_kwargs={"poolclass": sqlalchemy.pool.NullPool})
        # A sampler with no per-trial work: jobs only report and ask whether to prune.
        study = optuna.load_study(study_name=link.study, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(),
                                  pruner=make_pruner(link.pruner))
        # Storage ids are not part of Optuna's public Study API; numbers are unique per study.
        trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, link.number)
    except LstmlabError:
        raise
    except Exception as error:  # noqa: BLE001 - any storage failure is the same for the user
        raise LstmlabError(f"cannot reach Optuna trial {link.number} of study {link.study!r}: "
                           f"{str(error).splitlines()[0]}") from None
    return optuna.trial.Trial(study, trial_id)


def pruning_callback(trial: Any, epochs: int) -> Any:
    """A Keras callback that reports `val_rmse` per epoch and stops training when pruned.

    Walk-forward trains one model per fold, each fit with this same callback; it counts the fits
    and reports at the global step (fold - 1) × trainer.epochs + epoch, so every step is one
    fold's epoch in every trial of the study. Optuna's pruners compare trials at the same step
    (median, percentile, threshold) or treat steps as resource spent (successive halving,
    hyperband), and both hold: at a given step all trials are in the same fold at the same
    epoch, judged on the same val days, and later steps mean more training spent. A holdout run
    is fold 1: its steps are its epochs, as before. When pruned, `stop_run` tells
    `run_experiment` to train no further fold. Built on demand: Keras may only be imported once
    `run_experiment` has chosen the backend.
    """
    import keras

    class ReportToOptuna(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.fold = 0
            self.pruned_at: tuple[int, int] | None = None  # (fold, epochs trained) when pruned
            self.last_value: float | None = None

        @property
        def stop_run(self) -> bool:
            return self.pruned_at is not None

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.fold += 1

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get("val_rmse")
            if value is None:
                return
            self.last_value = float(value)
            trial.report(self.last_value, step=(self.fold - 1) * epochs + epoch)
            if self.pruned_at is None and trial.should_prune():
                self.pruned_at = (self.fold, epoch + 1)
                self.model.stop_training = True

    return ReportToOptuna()


def run_trial(cfg: DictConfig) -> float:
    """Run the job as Optuna trial `cfg.trial.number`: its val_rmse, or TrialPruned."""
    import mlflow
    import optuna

    from lstmlab.pipeline.evaluation import method
    from lstmlab.pipeline.experiment import run_experiment
    from lstmlab.runtime import use_backend

    link = TrialLink.from_config(cfg.trial)
    trial = connect(link)
    use_backend(cfg.trainer.backend)
    callback = pruning_callback(trial, int(cfg.trainer.epochs))
    result = run_experiment(
        cfg,
        callbacks=[callback],
        run_name=link.run_name,
        tags={"optuna_trial": str(link.number)},
        parent_run_id=link.parent_run_id,
    )
    trial.set_user_attr("mlflow_run_id", result["run_id"])  # Optuna dashboard → MLflow run
    if callback.pruned_at is not None:
        mlflow.MlflowClient().set_tag(result["run_id"], "state", "pruned")
        fold, epoch = callback.pruned_at
        where = f"epoch {epoch}" if method(cfg) == "holdout" else f"fold {fold} epoch {epoch}"
        raise optuna.TrialPruned(f"pruned after {where} (val_rmse {callback.last_value:.4g})")
    return result["val_rmse"]  # walk-forward: the mean of the folds' val RMSE
