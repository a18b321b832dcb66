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

import mlflow
import optuna
import sqlalchemy
from omegaconf import DictConfig, open_dict

from lstmlab.errors import LstmlabError, first_line
from lstmlab.pipeline.evaluation import method
from lstmlab.pipeline.experiment import RunResult, run_experiment
from lstmlab.secrets import mask
from lstmlab.sweep.link import TrialLink
from lstmlab.sweep.optuna_ids import running_trial
from lstmlab.sweep.optuna_specs import make_pruner
from lstmlab.sweep.outages import OPENING_ERRORS, RetryingStorage, retry_transient

# Reaching a trial fails as opening a storage does, or with Optuna's KeyError "Record does not
# exist" (no such study or trial in it).
REACHING_ERRORS: tuple[type[Exception], ...] = (*OPENING_ERRORS, KeyError)


def connect(link: TrialLink) -> Any:
    """The running `optuna.Trial` behind `link`, loaded from the shared storage; each call to it
    rides out a storage that stops answering for up to `link.storage_retry_s` seconds."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = link.storage_url()
    try:
        # No connection pool: jobs often run inside the sweeper's process, one storage each,
        # and pooled connections would pile up there (a PostgreSQL server allows ~100).
        storage = retry_transient(lambda: RetryingStorage(
            url, retry_s=link.storage_retry_s, engine_kwargs={"poolclass": sqlalchemy.pool.NullPool}),
            link.storage_retry_s, link.storage)
        # A sampler with no per-trial work: jobs only report and ask whether to prune.
        study = optuna.load_study(study_name=link.study, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(),
                                  pruner=make_pruner(link.pruner))
        return running_trial(study, storage, link.number)
    except LstmlabError:  # StorageUnavailable among them
        raise
    except REACHING_ERRORS as error:
        raise LstmlabError(f"cannot reach Optuna trial {link.number} of study {link.study!r}: "
                           f"{mask(first_line(error))}") from None


class PruningHook:
    """An epoch hook of `run_experiment`: reports `val_rmse` to the trial and asks to stop
    training when the pruner says so (remembering where, for the message).

    The step reported is the run's epoch step (lstmlab.pipeline.epochs.epoch_step: the epoch as the
    console numbers it, counted on across walk-forward folds), so Optuna's pruners hold as they
    are: median, percentile and threshold compare trials at one step,
    successive halving and hyperband read steps as resource spent (later steps are more training),
    and `n_warmup_steps` counts epochs. A pruned run trains no further fold.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.pruned_at: int | None = None  # epochs trained (the step) when the pruner stopped the run
        self.last_value: float | None = None

    def __call__(self, step: int, logs: dict[str, float]) -> bool:
        value = logs.get("val_rmse")
        if value is None:
            return False
        self.last_value = float(value)
        self.trial.report(self.last_value, step=step)
        if self.pruned_at is None and self.trial.should_prune():
            self.pruned_at = step
        return self.pruned_at is not None


def run_trial(cfg: DictConfig) -> RunResult:
    """Run the job as Optuna trial `cfg.trial.number`: run_experiment's result, or TrialPruned."""
    link = TrialLink.from_config(cfg.trial)
    if cfg.tracking.get("skip_finished"):
        # A trial reports every epoch to the pruner and its study resumes by itself; a reused run
        # would report nothing. So sweeps always train.
        with open_dict(cfg):
            cfg.tracking.skip_finished = False
    trial = connect(link)
    callback = PruningHook(trial)
    result = run_experiment(
        cfg,
        epoch_hooks=[callback],
        run_name=link.run_name,
        tags={"optuna_trial": str(link.number)},
        parent_run_id=link.parent_run_id,
    )
    trial.set_user_attr("mlflow_run_id", result.run_id)  # Optuna dashboard → MLflow run
    if callback.pruned_at is not None:
        mlflow.MlflowClient().set_tag(result.run_id, "state", "pruned")
        fold, epoch = divmod(callback.pruned_at - 1, int(cfg.trainer.epochs))
        where = f"epoch {epoch + 1}" if method(cfg) == "holdout" else f"fold {fold + 1} epoch {epoch + 1}"
        raise optuna.TrialPruned(f"pruned after {where} (val_rmse {callback.last_value:.4g})")
    return result  # its val_rmse, the objective: with walk-forward the mean of the folds'
