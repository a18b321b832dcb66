"""The sweeper's config node (`hydra.sweeper.*`), registered as `hydra/sweeper=lstmlab_optuna`."""

# No `from __future__ import annotations`: Hydra executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

# The embedded default: a SQLite file beside MLflow's artifacts, relative to the working directory.
DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"

# The keys are hydra-optuna-sweeper's where it has them (direction, storage: null, study_name,
# n_trials, n_jobs, sampler and pruner as {_target_: optuna.samplers.X, ...}, params), so a config
# written for it runs here once its `override /hydra/sweeper: optuna` names lstmlab_optuna.


@dataclass
class ConfirmConf:
    # After n_trials: the top_k best distinct configurations (by val_rmse) and the baseline, each
    # trained on `seeds` fresh seeds (never the sweep's trainer.seed) and judged on test RMSE as
    # `lstmlab compare --sweep S --confirm` judges them. 0: no confirm stage.
    top_k: int = 0
    seeds: int = 5  # at least 2: a verdict needs the spread of seeds
    # The baseline's overrides after the sweep's fixed ones, e.g. variant=baseline; null: the
    # sweep's own config without the searched params.
    baseline: Optional[str] = None  # noqa: UP045 - OmegaConf structured configs need typing.Optional


@dataclass
class LstmlabOptunaSweeperConf:
    _target_: str = "hydra_plugins.lstmlab_optuna_sweeper.sweeper.LstmlabOptunaSweeper"
    # Hydra must not instantiate the `_target_` of a sampler or pruner node when it makes the
    # sweeper: lstmlab maps it to a class it knows (lstmlab.sweep.optuna_specs), or refuses it.
    _recursive_: bool = False
    # key → Hydra sweep grammar: choice(...), interval(a,b), int(interval(a,b)), range(a,b,step),
    # tag(log, interval(a,b)); a plain value fixes the key for every trial.
    params: dict[str, str] | None = None
    # Trials the study runs in total (COMPLETE + PRUNED + FAIL, across resumes and workers).
    n_trials: int = 20
    # Trials asked of the sampler and launched together: `auto` = as many as the launcher runs at
    # once (hydra.launcher.n_jobs of hydra/launcher=parallel or joblib; 1 for others), or N.
    n_jobs: Any = "auto"
    # true: with hydra/launcher=parallel or submitit_*, keep n_jobs trials running, the next one
    # asked and started as soon as any ends; false (or another launcher): batches of n_jobs, each
    # awaited whole before the next is asked (workers wait for the batch's slowest trial).
    async_trials: bool = True
    # null: named after the search and the data (variants-sp500, wide-csv-prices, sweep-synthetic)
    study_name: Optional[str] = None  # noqa: UP045 - OmegaConf structured configs need typing.Optional
    # Any Optuna RDB URL: sqlite:///path.db, postgresql://user@host/db, mysql://...; null: the default
    storage: Optional[str] = DEFAULT_STORAGE  # noqa: UP045
    # The objective, val_rmse, is minimized: `minimize` is accepted, as hydra-optuna-sweeper writes it.
    direction: Any = "minimize"
    # tpe | random | grid | qmc | cmaes | gp | bruteforce, or {name: tpe, <arguments>}, or
    # {_target_: optuna.samplers.TPESampler, <arguments>} (those classes only)
    sampler: Any = "tpe"
    seed: int | None = 42  # trial n samples with seed + n: reproducible, distinct across workers
    # median | percentile | successive_halving | hyperband | threshold | none, or {name: ..., <arguments>},
    # or {_target_: optuna.pruners.MedianPruner, <arguments>}. Each epoch's val_rmse is reported at
    # step = the epoch as the console numbers it (1, 2, ...); median and percentile judge from the
    # 4th epoch, once 3 trials have finished (n_warmup_steps=4, n_startup_trials=3 unless given; measured).
    pruner: Any = "median"
    # The sweep stops once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.25
    # Seconds between liveness records of running trials; a trial silent for 3 intervals is
    # failed and queued again (a killed worker's trial does not stay RUNNING).
    heartbeat_interval: int = 30
    # Seconds a storage that answered before may stop answering (a database restart, a dropped
    # connection) before the sweep stops: its calls are tried again meanwhile, in every job too.
    storage_retry_s: int = 60
    # The sweep's winner retrained on fresh seeds against the baseline: see ConfirmConf.
    confirm: ConfirmConf = field(default_factory=ConfirmConf)


ConfigStore.instance().store(
    group="hydra/sweeper", name="lstmlab_optuna", node=LstmlabOptunaSweeperConf, provider="lstmlab"
)
