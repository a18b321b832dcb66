"""Samplers: `hydra.sweeper.sampler` (a name or {name: ..., <arguments>}) → an Optuna sampler.

Seeded samplers draw trial n with seed + n: a resumed study continues the sequence of an
uninterrupted one, and parallel workers never draw the same values from the same seed. So the
study's sampler is set once, a `PerTrialSampler` that makes trial n's sampler from seed + n: one
sampler seeded once would draw a resumed study's trials anew from the start of its sequence, and
every worker started with the seed the same values.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from lstmlab.errors import LstmlabError, first_line
from lstmlab.sweep.optuna_specs import SAMPLERS, named_spec

from ._space import SearchSpace

# Samplers whose package Optuna imports only when sampling: checked before the study starts.
REQUIRES = {"cmaes": "cmaes", "gp": "torch"}
# QMC's scrambling must stay fixed over the study: it takes the seed as given.
FIXED_SEED = ("qmc",)
# Parallel workers: TPE treats running trials as bad results, so workers spread out.
DEFAULTS: dict[str, dict[str, Any]] = {"tpe": {"constant_liar": True}}


@dataclass(frozen=True)
class SamplerFactory:
    name: str
    kwargs: dict[str, Any]
    seed: int | None
    space: SearchSpace

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.kwargs, "seed": self.seed}

    def grid_size(self) -> int | None:
        """How many distinct trials a grid holds (None for other samplers)."""
        if self.name not in ("grid", "bruteforce"):
            return None
        size = 1
        for values in self.space.grid().values():
            size *= len(values)
        return size

    def per_trial(self) -> PerTrialSampler:
        """The study's sampler: trial n sampled by `make(n)`."""
        return PerTrialSampler(self)

    def make(self, trial_index: int = 0) -> optuna.samplers.BaseSampler:
        cls = getattr(optuna.samplers, SAMPLERS[self.name])
        kwargs = dict(self.kwargs)
        if self.name == "grid":
            kwargs["search_space"] = self.space.grid()
        if self.seed is not None and "seed" in inspect.signature(cls).parameters:
            kwargs["seed"] = self.seed + (0 if self.name in FIXED_SEED else trial_index)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return cls(**kwargs)
        except (TypeError, ValueError, ImportError) as error:
            accepted = ", ".join(p for p in inspect.signature(cls).parameters if p != "self")
            raise LstmlabError(
                f"hydra.sweeper.sampler={self.spec}: {first_line(error)} "
                f"({self.name} accepts: {accepted})"
            ) from None


def sampler_factory(value: Any, seed: int | None, space: SearchSpace) -> SamplerFactory:
    name, spec = named_spec(value, "sampler", SAMPLERS)
    package = REQUIRES.get(name)
    if package is not None and importlib.util.find_spec(package) is None:
        raise LstmlabError(f"hydra.sweeper.sampler={name} needs the {package!r} package: "
                           f"pip install {package} (or use tpe, random, grid, qmc)")
    if "seed" in spec:
        seed = spec.pop("seed")
    factory = SamplerFactory(name, {**DEFAULTS.get(name, {}), **spec}, seed, space)
    factory.make()  # a bad argument or missing package is reported before the study is touched
    return factory


# Samplers whose `after_trial` only stops the study once every point ran: `study.stop()` works
# only inside `study.optimize()`, and the sweep stops by counting (grid_size, n_trials).
STOP_ONLY_AFTER_TRIAL = ("grid", "bruteforce")


class PerTrialSampler(optuna.samplers.BaseSampler):
    """Trial n asks `factory.make(n)`, made when the trial starts (`before_trial`) and dropped
    when it is told (`after_trial`). Every call is made in the sweeper's process, under the
    study lock (asks) or in the loop's thread (tells)."""

    def __init__(self, factory: SamplerFactory) -> None:
        self.factory = factory
        self.by_trial: dict[int, optuna.samplers.BaseSampler] = {}

    def _of(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if trial.number not in self.by_trial:
            self.by_trial[trial.number] = self.factory.make(trial.number)
        return self.by_trial[trial.number]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._of(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._of(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        sampler = self.by_trial.pop(trial.number, None)
        if sampler is not None and self.factory.name not in STOP_ONLY_AFTER_TRIAL:
            sampler.after_trial(study, trial, state, values)
