"""Search space: Hydra's sweep grammar → Optuna distributions, and sampled values → overrides.

    choice(a, b, ...) / a,b,...   CategoricalDistribution (lists and dicts kept as override text)
    interval(a, b)                FloatDistribution(a, b)
    int(interval(a, b))           IntDistribution(a, b)
    range(a, b, step)             Int/FloatDistribution(a, last value, step) (b excluded, as in Python)
    tag(log, [int(]interval(a, b)[)])   the same with log=True
    shuffle(...)                  CategoricalDistribution of the values
A plain `key=value` fixes the key for every trial. Command-line arguments override
`hydra.sweeper.params` key by key, so `model.dropout=0.1` removes dropout from the space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lstmlab.errors import LstmlabError, first_line
from lstmlab.sweep.override_text import format_value

# What composing a job config raises for a user's mistake: Hydra's errors (no such config group
# option, no such key, an override it cannot parse), OmegaConf's (an interpolation that does not
# resolve), and Hydra's plain ValueError for a config group given a number (`optimizer=3`).
COMPOSE_ERRORS: tuple[type[Exception], ...] = (HydraException, OmegaConfBaseException, ValueError)

Primitive = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Dimension:
    """One swept key: its Optuna distribution and how its values are written as overrides."""

    key: str  # the override key as written (may start with + for keys the config lacks)
    distribution: BaseDistribution
    text: str  # the grammar as written, for the study's record
    encoded: frozenset[str] = frozenset()  # categorical values that are override text (lists, dicts)

    @property
    def name(self) -> str:
        """The Optuna parameter name: the config path (`model.units`, `optimizer`)."""
        return self.key.lstrip("+~")

    def override(self, value: Any) -> str:
        return f"{self.key}={value if value in self.encoded else format_value(value)}"

    def sample_values(self) -> list[Any]:
        """Values worth composing to validate the key: every choice, or both ends of a range."""
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return list(d.choices)
        assert isinstance(d, (IntDistribution, FloatDistribution))  # what parse_dimension builds
        return [d.low, d.high]


@dataclass(frozen=True)
class SearchSpace:
    dimensions: dict[str, Dimension]
    fixed: list[str] = field(default_factory=list)  # overrides every trial gets, in order

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.name: d.distribution for d in self.dimensions.values()}

    def overrides(self, params: Mapping[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then one per swept key."""
        return [*self.fixed, *(d.override(params[d.name]) for d in self.dimensions.values())]

    def record(self) -> dict[str, str]:
        return {d.name: d.text for d in self.dimensions.values()}

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every key, for the grid sampler; continuous intervals cannot be gridded."""
        grid: dict[str, list[Any]] = {}
        for d in self.dimensions.values():
            dist = d.distribution
            if isinstance(dist, CategoricalDistribution):
                grid[d.name] = list(dist.choices)
            elif isinstance(dist, (IntDistribution, FloatDistribution)) and dist.step is not None and not dist.log:
                count = int(round((dist.high - dist.low) / dist.step)) + 1
                grid[d.name] = [dist.low + i * dist.step for i in range(count)]
            else:
                raise LstmlabError(
                    f"hydra.sweeper.sampler=grid needs discrete values, but {d.name}={d.text} is "
                    "continuous; use choice(...) or range(a,b,step) for it, or another sampler"
                )
        return grid

    def values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sampled values as the config holds them: override text of lists back to lists."""
        parser = OverridesParser.create()
        encoded = {d.name: d.encoded for d in self.dimensions.values()}
        return {name: parser.parse_override(f"k={value}").value()
                if value in encoded.get(name, ()) else value for name, value in params.items()}


def parse_space(params: Mapping[str, Any] | None, arguments: list[str]) -> SearchSpace:
    """The space from `hydra.sweeper.params`, then the command line (which wins per key)."""
    parser = OverridesParser.create()
    lines = [(f"{key}={value}", "hydra.sweeper.params") for key, value in (params or {}).items()]
    lines += [(argument, "the command line") for argument in arguments]
    dimensions: dict[str, Dimension] = {}
    fixed: dict[str, str] = {}
    for line, where in lines:
        try:
            override = parser.parse_override(line)
        except HydraException as error:
            raise LstmlabError(f"cannot parse {line!r} in {where}: {first_line(error)}") from None
        key = override.get_key_element()
        name = key.lstrip("+~")
        dimensions.pop(name, None)
        fixed.pop(name, None)
        if override.is_sweep_override():
            dimensions[name] = _dimension(override, line, where)
        else:
            fixed[name] = line
    return SearchSpace(dimensions=dimensions, fixed=list(fixed.values()))


def _dimension(override: Override, line: str, where: str) -> Dimension:
    key = override.get_key_element()
    text = line.split("=", 1)[1]
    value = override.value()
    tags = set(getattr(value, "tags", set()) or set())
    if tags - {"log"}:
        raise LstmlabError(f"{line} in {where}: unknown tag {sorted(tags - {'log'})}; "
                           "only tag(log, interval(a,b)) is understood")
    log = "log" in tags
    try:
        if isinstance(value, IntervalSweep):
            return Dimension(key, _interval(value, log), text)
        if isinstance(value, RangeSweep) and not value.shuffle:
            if log:
                raise ValueError("tag(log, ...) needs an interval, e.g. tag(log, interval(1e-4, 1e-1))")
            return Dimension(key, _range(value), text)
        if isinstance(value, (ChoiceSweep, RangeSweep)):
            if log:
                raise ValueError("tag(log, ...) needs an interval, not a list of choices")
            choices, encoded = _choices(override)
            return Dimension(key, CategoricalDistribution(choices), text, frozenset(encoded))
    except ValueError as error:
        raise LstmlabError(f"{line} in {where}: {error}") from None
    raise LstmlabError(f"{line} in {where}: {type(value).__name__} is not understood; use "
                       "choice(...), interval(a,b), int(interval(a,b)), range(a,b,step) or "
                       "tag(log, interval(a,b))")


def _interval(value: IntervalSweep, log: bool) -> BaseDistribution:
    low, high = value.start, value.end
    if low is None or high is None:  # Hydra's grammar gives both; its type allows neither
        raise ValueError("interval(a, b) needs both bounds")
    if low > high:
        raise ValueError(f"interval({low}, {high}) is empty: write the lower bound first")
    if log and low <= 0:
        raise ValueError(f"tag(log, interval({low}, {high})) needs a lower bound above 0")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def _range(value: RangeSweep) -> BaseDistribution:
    start, stop, step = value.start, value.stop, value.step
    if start is None or stop is None or step is None:  # Hydra's grammar gives all three; its type allows none
        raise ValueError("range(a, b, step) needs its start, end and step")
    if step == 0:
        raise ValueError("range(...) needs a step other than 0")
    if all(isinstance(v, int) for v in (start, stop, step)):
        ints = range(int(start), int(stop), int(step))
        if not ints:
            raise ValueError(f"range({start}, {stop}, {step}) has no values (the end is excluded)")
        return IntDistribution(min(ints[0], ints[-1]), max(ints[0], ints[-1]), step=abs(int(step)))
    # In decimal, as written: range(0.1, 0.5, 0.1) has 4 values in decimal, 5 in binary floats.
    # (Hydra 1.3 gives floats, 1.4 may give Decimals: both are read through their text.)
    first, end, by = (Decimal(str(v)) for v in (start, stop, step))
    count = max(0, math.ceil((end - first) / by))
    if count == 0:
        raise ValueError(f"range({start}, {stop}, {step}) has no values (the end is excluded)")
    last = first + (count - 1) * by
    return FloatDistribution(float(min(first, last)), float(max(first, last)), step=float(abs(by)))


def _choices(override: Override) -> tuple[list[Any], list[str]]:
    values = list(override.sweep_iterator())
    if not values:
        raise ValueError("choice() needs at least one value")
    choices: list[Any] = []
    encoded: list[str] = []
    for value in values:
        if isinstance(value, (list, dict)):  # Optuna stores primitives: keep the override text
            value = format_value(value)
            encoded.append(value)
        elif not isinstance(value, Primitive):
            raise ValueError(f"cannot sweep over {value!r} inside choice(...)")
        choices.append(value)
    if len(set(map(repr, choices))) != len(choices):
        raise ValueError("choice(...) lists a value twice")
    return choices, encoded


def validate(space: SearchSpace, compose: Callable[[list[str]], None]) -> None:
    """Compose the config with every choice (and both ends of every range) before any trial runs.

    The k-th composition uses the k-th value of every key, so a space costs as many compositions
    as its longest choice list; only when one fails is each key tried alone, to name the culprit.
    """
    dims = list(space.dimensions.values())
    rounds = max((len(d.sample_values()) for d in dims), default=1)
    for k in range(rounds):
        overrides = [*space.fixed]
        for d in dims:
            values = d.sample_values()
            overrides.append(d.override(values[k % len(values)]))
        try:
            compose(overrides)
        except COMPOSE_ERRORS:  # find which key is wrong, below
            _name_the_culprit(space, compose)
            raise
    return None


def _name_the_culprit(space: SearchSpace, compose: Callable[[list[str]], None]) -> None:
    if space.fixed:
        _try(compose, space.fixed, " ".join(space.fixed), "the fixed overrides")
    for d in space.dimensions.values():
        for value in d.sample_values():
            line = d.override(value)
            _try(compose, [*space.fixed, line], line, f"the search space ({d.name}={d.text})")


def _try(compose: Callable[[list[str]], None], overrides: list[str], line: str, where: str) -> None:
    try:
        compose(overrides)
    except COMPOSE_ERRORS as error:
        raise LstmlabError(f"{line} in {where}: {first_line(error)}") from None
