"""A sweep's settings, resolved once: `hydra.sweeper.*` and the command line, checked, turned into
the objects the loop runs by (the space, a sampler factory, a pruner spec, the storage URL, the
study's name), and frozen. The loop reads them and never writes back into the sweeper.

Everything a user can get wrong is checked here, before any storage or MLflow run is touched:
a bad number, space or config value, a tracking server that does not answer, data that do not load.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError, first_line
from lstmlab.plural import count
from lstmlab.secrets import mask
from lstmlab.sweep.launchers import parallelism
from lstmlab.sweep.optuna_specs import make_pruner, pruner_spec
from lstmlab.sweep.sweeper_needs import check_jobs, data_fingerprint, default_name

from ._sampling import SamplerFactory, sampler_factory
from ._space import COMPOSE_ERRORS, SearchSpace, parse_space, validate
from ._storage import resolve_url
from .config import DEFAULT_STORAGE, LstmlabOptunaSweeperConf

log = logging.getLogger(__name__)

Compose = Callable[[list[str]], DictConfig]  # the job config for some overrides, as launched


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep runs by; built by `resolve_settings`, never changed afterwards."""

    study_name: str
    n_trials: int  # the grid's size when a grid sampler has fewer points
    concurrency: int  # trials running at once (hydra.sweeper.n_jobs)
    async_trials: bool  # the next trial starts as soon as one ends, where the launcher can (_jobs.py)
    storage_url: str  # as the database needs it (it may hold a password): show `shown_storage`
    space: SearchSpace
    sampler: SamplerFactory
    pruner: dict[str, Any]
    max_failure_rate: float
    heartbeat_interval: int
    storage_retry_s: float  # how long a storage that answered before may stop answering
    data_fingerprint: str  # of the data the study runs on (lstmlab.sweep.sweeper_needs)
    confirm: ConfirmSettings  # the stage after n_trials (_confirm.py); off when top_k is 0

    @property
    def shown_storage(self) -> str:
        """The storage URL as messages, tags and files show it: without its password."""
        return mask(self.storage_url)


def resolve_settings(options: LstmlabOptunaSweeperConf, arguments: list[str], config: DictConfig,
                     compose: Compose) -> SweepSettings:
    """Check everything the user gave (`options`: hydra.sweeper; `arguments`: the command line's
    overrides; `config`: the multirun's config) and resolve it into the sweep's settings."""
    space = parse_space(options.params, arguments)
    if not space.dimensions:
        raise LstmlabError("the search space is empty: set hydra.sweeper.params (e.g. with "
                           "hparams_search=variants) or give a sweep such as "
                           "'model.dropout=interval(0,0.5)'")
    _check_direction(options.direction)
    concurrency = _check_numbers(options, config.hydra.launcher)
    composed: list[DictConfig] = []  # the job configs validate composes, checked as a run would be
    validate(space, lambda overrides: composed.append(compose(overrides)))
    check_jobs(composed)  # every config value, the data, a dead tracking server: before any storage
    data_cfg = compose(list(space.fixed)).data
    # Named after what it searches and the data when not named: see lstmlab.sweep.sweeper_needs.
    name = options.study_name or default_name(config.hydra.runtime.choices.get("hparams_search"), data_cfg)
    fingerprint = data_fingerprint(data_cfg)
    sampler = sampler_factory(options.sampler, options.seed, space)
    pruner = pruner_spec(options.pruner)
    make_pruner(pruner)  # a bad argument is one line now, not a failure in every trial
    confirm = resolve_confirm(options.confirm, space.fixed, compose)
    n_trials = options.n_trials
    grid = sampler.grid_size()
    if grid is not None and grid < n_trials:
        log.info(f"[sweep {name}] the grid has {count(grid, 'point')}: running {count(grid, 'trial')}, not {n_trials}")
        n_trials = grid
    return SweepSettings(
        study_name=name, n_trials=n_trials, concurrency=concurrency, async_trials=options.async_trials,
        storage_url=resolve_url(options.storage or DEFAULT_STORAGE),
        space=space, sampler=sampler, pruner=pruner, max_failure_rate=options.max_failure_rate,
        heartbeat_interval=options.heartbeat_interval, storage_retry_s=options.storage_retry_s,
        data_fingerprint=fingerprint, confirm=confirm,
    )


def _check_direction(direction: Any) -> None:
    """hydra-optuna-sweeper's `direction`: lstmlab's objective is minimized, so only `minimize`."""
    if str(getattr(direction, "name", direction)).lower() != "minimize":
        raise LstmlabError(f"hydra.sweeper.direction={direction}: lstmlab sweeps minimize val_rmse, the "
                           "validation RMSE in price units every run returns (lower is better); remove "
                           "the key or write minimize")


def _check_numbers(options: LstmlabOptunaSweeperConf, launcher: Any) -> int:
    """Check the sweeper's numbers; the concurrency they give."""
    if not isinstance(options.n_trials, int) or options.n_trials < 1:
        raise LstmlabError(f"hydra.sweeper.n_trials={options.n_trials} must be a whole number "
                           "of at least 1")
    concurrency = trials_at_once(options.n_jobs, launcher)
    if not 0 <= options.max_failure_rate <= 1:
        raise LstmlabError(f"hydra.sweeper.max_failure_rate={options.max_failure_rate} must be "
                           "in [0, 1]")
    interval = options.heartbeat_interval
    if not isinstance(interval, int) or interval < 1:
        raise LstmlabError(f"hydra.sweeper.heartbeat_interval={interval} must be a whole number of "
                           "seconds, at least 1")
    if not isinstance(options.storage_retry_s, int) or options.storage_retry_s < 0:
        raise LstmlabError(f"hydra.sweeper.storage_retry_s={options.storage_retry_s} must be a whole "
                           "number of seconds, at least 0")
    return concurrency


def trials_at_once(n_jobs: Any, launcher: Any) -> int:
    """`hydra.sweeper.n_jobs` as a number: `auto` follows a parallel launcher's `n_jobs`
    (joblib's convention: -1 = every usable core), else 1."""
    if n_jobs == "auto":
        return parallelism(launcher) if launcher is not None and launcher.get("n_jobs") is not None else 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise LstmlabError(f"hydra.sweeper.n_jobs={n_jobs} must be a whole number of at least 1, "
                           "or auto")
    return n_jobs


@dataclass(frozen=True)
class ConfirmSettings:
    """hydra.sweeper.confirm, checked: `top_k` 0 is off."""

    top_k: int
    seeds: tuple[int, ...]  # fresh: never the sweep's own trainer.seed
    baseline: tuple[str, ...]  # the baseline's overrides, after the sweep's fixed ones

    @property
    def on(self) -> bool:
        return self.top_k > 0


def resolve_confirm(options: Any, fixed: Sequence[str], compose: Callable[[list[str]], Any]) -> ConfirmSettings:
    """hydra.sweeper.confirm checked in one line each: whole numbers, at least two seeds (a verdict
    needs seed noise), a baseline whose overrides parse and compose."""
    top_k: Any = getattr(options, "top_k", 0)
    n_seeds: Any = getattr(options, "seeds", 5)
    given: Any = getattr(options, "baseline", None)
    for key, value, least in (("top_k", top_k, 0), ("seeds", n_seeds, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise LstmlabError(f"hydra.sweeper.confirm.{key}={value} must be a whole number of at least {least}"
                               + (": a verdict needs the spread of two seeds or more" if key == "seeds" else ""))
    baseline = _baseline_overrides(given)
    if not top_k:
        return ConfirmSettings(0, (), baseline)
    try:
        baseline_cfg = compose([*fixed, *baseline])
    except COMPOSE_ERRORS as error:
        raise LstmlabError(f"hydra.sweeper.confirm.baseline={given!r} does not compose: {first_line(error)}") from None
    sweep_seed = baseline_cfg.trainer.seed  # the one seed the confirm runs leave out
    seeds = tuple(s for s in range(1, n_seeds + 2) if s != sweep_seed)[:n_seeds]
    return ConfirmSettings(top_k, seeds, baseline)


def _baseline_overrides(given: Any) -> tuple[str, ...]:
    """`variant=baseline model.dropout=0.2` (or a list of such) as overrides; a sweep or a line
    Hydra cannot parse is one line."""
    if given in (None, ""):
        return ()
    lines = [str(v) for v in given] if isinstance(given, Sequence) and not isinstance(given, str) else shlex.split(str(given))
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except OverrideParseException as error:
        raise LstmlabError(f"hydra.sweeper.confirm.baseline={given!r} is not a list of overrides "
                           f"(e.g. variant=baseline): {first_line(error)}") from None
    swept = [o.input_line for o in parsed if o.is_sweep_override()]
    if swept:
        raise LstmlabError(f"hydra.sweeper.confirm.baseline: {swept[0]} sweeps; the baseline is one configuration")
    return tuple(lines)
