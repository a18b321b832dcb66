"""What the sweeper process (src/hydra_plugins/lstmlab_optuna_sweeper) takes from lstmlab's
pipeline and MLflow store, in one module: the import contract in pyproject.toml lets the plugin
reach `pipeline` and `tracking` through here only.

- the store: the experiment a study's runs go to (opened and checked writable before the study
  is touched), the owner tags of the parent run, closing a dead worker's child run;
- preflight: the job configs checked as a single run checks its own, so a mistyped `data.path`,
  a model value out of range or more walk-forward folds than the data have rows for is one line
  before the study opens, not a failure in every trial that uses up the study's failure rate;
- data identity: a study's default name says what it searches and on which data, and the study
  records the data's fingerprint (the data_sha256 every run on them is tagged with), so a sweep
  never silently continues on other data.
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig

from lstmlab.pipeline.checks import check_data
from lstmlab.pipeline.data import data_name, training_table
from lstmlab.pipeline.experiment import preflight
from lstmlab.tracking.open import use_store
from lstmlab.tracking.orphans import close_run, owner_tags

__all__ = ["check_jobs", "close_run", "data_fingerprint", "default_name", "owner_tags", "use_store"]


def check_jobs(configs: Iterable[DictConfig]) -> None:
    """A run's preflight (lstmlab.pipeline.experiment.preflight) on each job config; what needs
    Keras is left to the trials (run_experiment imports it, after a trial chose the backend), so
    the sweeper's process never fixes a backend."""
    for cfg in configs:
        preflight(cfg)


def default_name(search: str | None, data_cfg: DictConfig) -> str:
    """e.g. variants-sp500, wide-synthetic, variants-csv-prices; `sweep-...` without hparams_search."""
    return f"{search or 'sweep'}-{data_name(data_cfg)}"


def data_fingerprint(data_cfg: DictConfig) -> str:
    """The fingerprint every run on these data is tagged with (data_sha256): of the table read,
    before any split or window. `data_cfg` comes from the sweep's fixed overrides alone, a
    config preflight did not see: checked here."""
    check_data(data_cfg)
    return training_table(data_cfg).sha256
