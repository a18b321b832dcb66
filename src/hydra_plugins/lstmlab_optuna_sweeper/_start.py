"""A sweep's start: its settings resolved, the study and its MLflow parent opened under the study
lock (workers starting together open one of each), then the loop runs the trials."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError
from lstmlab.sweep.link import hand_over_storage
from lstmlab.sweep.sweeper_needs import use_store

from . import _hydra_files
from ._loop import OpenStudy, StudyLoop
from ._settings import Compose, SweepSettings, resolve_settings
from ._space import SearchSpace
from ._storage import StudyLock, open_storage, open_study
from ._tracking import StudyParent, parent_run
from .config import LstmlabOptunaSweeperConf

log = logging.getLogger(__name__)

DATA_ATTR = "data_sha256"  # the study's user attribute: the fingerprint of the data it ran on


def run_study(options: LstmlabOptunaSweeperConf, arguments: list[str], config: DictConfig,
              compose: Compose, launcher: Any) -> list[list[JobReturn]]:
    """Check everything the user gave, then open the study and run it to n_trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    settings = resolve_settings(options, arguments, config, compose)
    opened = _open(settings, config)
    hand_over_storage(settings.storage_url)  # the jobs' link shows it masked (lstmlab.sweep.link)
    _hydra_files.prepare(config, settings.shown_storage)
    return StudyLoop(settings, opened, launcher, compose).run()


def _open(settings: SweepSettings, config: DictConfig) -> OpenStudy:
    lock = StudyLock(settings.storage_url, settings.study_name, settings.storage_retry_s)
    with lock:
        storage = open_storage(settings.storage_url, settings.heartbeat_interval, settings.storage_retry_s)
        experiment = use_store(config.tracking)  # checked writable (a read-only store: one line) before the study
        study = open_study(storage, settings.study_name, settings.sampler.per_trial())
        _check_data(study, settings.data_fingerprint, settings.shown_storage)
        _remember_setup(study, settings.space)
        parent_id = parent_run(study, experiment, settings.shown_storage)
    return OpenStudy(study=study, storage=storage, lock=lock, parent=StudyParent(parent_id))


def _remember_setup(study: optuna.Study, space: SearchSpace) -> None:
    """Store the space and fixed overrides with a new study; say so when a resume changes them."""
    setup = {"search_space": space.record(), "fixed_overrides": list(space.fixed)}
    for key, value in setup.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)
        elif study.user_attrs[key] != value:
            log.info(f"[sweep {study.study_name}] note: {key.replace('_', ' ')} differ from the ones "
                     f"the study started with ({study.user_attrs[key]}); its trials mix both")


def _check_data(study: optuna.Study, fingerprint: str, where: str) -> None:
    """Record the data on a new study; refuse one that ran on other data (sweeper_needs.data_fingerprint)."""
    recorded = study.user_attrs.get(DATA_ATTR)
    if recorded is None:
        study.set_user_attr(DATA_ATTR, fingerprint)
    elif recorded != fingerprint:
        raise LstmlabError(
            f"study {study.study_name!r} in {where} ran on other data (fingerprint "
            f"{recorded[:12]}, these data {fingerprint[:12]}); start a new study for them with "
            f"hydra.sweeper.study_name={study.study_name}-{fingerprint[:6]} (or any new name)"
        )
