"""The Hydra Sweeper: `lstmlab train -m hparams_search=...` runs an Optuna study.

Hydra instantiates it from `hydra.sweeper` (see config.py), calls `setup` with the task
function and the config, then `sweep` with the command-line overrides. The study itself
runs in _start.py and _loop.py; this module stays light because Hydra imports it on every start.
"""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .config import LstmlabOptunaSweeperConf  # also registers hydra/sweeper=lstmlab_optuna


class LstmlabOptunaSweeper(Sweeper):
    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = LstmlabOptunaSweeperConf(**options)  # hydra.sweeper as given: _settings checks it
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def compose(self, overrides: list[str]) -> DictConfig:
        """The job config for `overrides`, composed as the launcher will compose it."""
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(
            master_config=self.config, sweep_overrides=list(overrides)
        )

    def sweep(self, arguments: list[str]) -> Any:
        from ._start import run_study  # Optuna and MLflow load only when a sweep starts

        assert self.config is not None
        return run_study(self.options, list(arguments), self.config, self.compose, self.launcher)
