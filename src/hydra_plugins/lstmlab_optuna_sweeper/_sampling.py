"""Samplers: `hydra.sweeper.sampler` (a name or {name: ..., <arguments>}) → an Optuna sampler.

Seeded samplers draw trial n with seed + n: a resumed study continues the sequence of an
uninterrupted one, and parallel workers never draw the same values from the same seed.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import optuna

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
