"""Checks: every config value a user can set, validated in one place before a run starts.

Hydra parses `trainer.seed=abc` into the string "abc" without complaint; Keras would fail on it
minutes later (patience in the second epoch), leaving a FAILED run behind. `check_config` runs
before any data is read or framework imported and names the key, the value and what it takes.
Only the Keras activation name needs Keras: keras_side.model.check_activation checks it once
Keras is imported.

A config that is run may come from a record anyone with write access to the store could have
edited, and Hydra's `instantiate` calls whatever `_target_` names: `check_targets` lets only a
Keras optimizer, a Keras loss and a scikit-learn scaler through, each at its own key, before
anything is instantiated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeGuard

from omegaconf import DictConfig, DictKeyType, ListConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.runtime import BACKENDS

SOURCES = ("sp500", "csv", "synthetic")
NAN_POLICIES = ("error", "drop", "ffill")
VERBOSE = ("auto", 0, 1, 2)
DECIMALS = (".", ",")  # pipeline.formats
SECTIONS = ("data", "model", "optimizer", "loss", "trainer", "tracking")
TARGET_TRANSFORMS = ("none", "log_return")  # pipeline.transform
EVALUATIONS = ("holdout", "walk_forward")  # pipeline.evaluation
WINDOWS = ("expanding", "sliding")

# The classes a config may instantiate, by the key that names them (docs/contracts.md, "Config
# keys"). Keras' public classes but the abstract bases and the wrappers that take another optimizer
# (tests/records/test_tampered_records.py compares the lists with the installed Keras and scikit-learn).
OPTIMIZERS = frozenset({"Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lamb",
                        "Lion", "Muon", "Nadam", "RMSprop", "SGD", "ScheduleFreeAdamW"})
LOSSES = frozenset({
    "BinaryCrossentropy", "BinaryFocalCrossentropy", "CTC", "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy", "CategoricalGeneralizedCrossEntropy", "CategoricalHinge", "Circle",
    "CosineSimilarity", "Dice", "Hinge", "Huber", "KLDivergence", "LogCosh", "MeanAbsoluteError",
    "MeanAbsolutePercentageError", "MeanSquaredError", "MeanSquaredLogarithmicError", "Poisson",
    "SparseCategoricalCrossentropy", "SquaredHinge", "Tversky",
})
SCALERS = frozenset({"MaxAbsScaler", "MinMaxScaler", "RobustScaler", "StandardScaler"})  # pipeline.scalers saves them
TARGETS = {  # key → (module, classes, what it names)
    "optimizer": ("keras.optimizers", OPTIMIZERS, "a Keras optimizer"),
    "loss": ("keras.losses", LOSSES, "a Keras loss"),
    "data.scaler": ("sklearn.preprocessing", SCALERS, "a scikit-learn scaler"),
}
# Hydra's instantiate reads these too (positional arguments, a partial, recursion): not in our configs.
INSTANTIATE_KEYS = ("_args_", "_partial_", "_convert_", "_recursive_")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(low: int, high: int | None = None) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if _is_int(value) and value >= low and (high is None or value <= high):
            return None
        return f"must be a whole number {'of at least ' + str(low) if high is None else f'from {low} to {high}'}"
    return check


def number(
    low: float, high: float | None = None, low_open: bool = False, high_open: bool = True
) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if _is_number(value) and (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        ):
            return None
        if high is None:
            return f"must be a number {'above' if low_open else 'of at least'} {low:g}"
        if low_open and high_open:
            return f"must be between {low:g} and {high:g}"
        return f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return check


def boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def one_of(*options: object) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if any(value == option and type(value) is type(option) for option in options):
            return None
        return "must be one of " + ", ".join(map(str, options))
    return check


def text(optional: bool = False) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if (value is None and optional) or (isinstance(value, str) and value.strip()):
            return None
        return "must be a name" + (" or null" if optional else "")
    return check


def names(optional: bool = True) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, (list, ListConfig)) and value and all(isinstance(v, str) and v for v in value):
            return None
        return "must be a list of column names, e.g. [Close,Volume]" + (" (or null)" if optional else "")
    return check


def units(value: object) -> str | None:
    entries = list(value) if isinstance(value, (list, ListConfig)) else [value]
    if entries and all(_is_int(n) and n > 0 for n in entries):
        return None
    return "must list one whole number above 0 per LSTM layer, e.g. [50, 50]"


TRAINER = {
    "epochs": whole(1),
    "batch_size": whole(1),
    "seed": whole(0, 2**32 - 1),  # NumPy's seed range
    "shuffle": boolean,
    "verbose": one_of(*VERBOSE),
    "backend": one_of(*BACKENDS),
    "early_stopping.enabled": boolean,
    "early_stopping.patience": whole(0),
    "early_stopping.min_delta": number(0),
    "early_stopping.restore_best_weights": boolean,
}
MODEL = {"units": units, "activation": text(), "bidirectional": boolean, "dropout": number(0, 1)}
TRACKING = {"experiment": text(), "variant": text(), "run_name": text(optional=True),
            "log_model": boolean, "uri": text(optional=True)}
TRACKING_OPTIONAL = {"skip_finished": boolean}  # absent from configs logged before it existed
DATA = {
    "source": one_of(*SOURCES),
    "target": text(),
    "features": names(),
    "date_column": text(optional=True),
    "lookback": whole(1),
    "val_fraction": number(0, 1, low_open=True),
    "test_fraction": number(0, 1, low_open=True),
    "nan_policy": one_of(*NAN_POLICIES),
}
DATA_OPTIONAL = {  # keys of some sources only
    "path": lambda v: None if v is None or (isinstance(v, str) and v.strip()) else "must be a file path",
    "rows": whole(2),
    "seed": whole(0, 2**32 - 1),
    "decimal": lambda v: None if v is None or v in DECIMALS else "must be . or , (or null: detected)",
    "date_format": text(optional=True),
    "max_file_mb": number(0, low_open=True),
    "target_transform": one_of(*TARGET_TRANSFORMS),  # absent from configs logged before it existed
}
EVALUATION = {"name": one_of(*EVALUATIONS)}
WALK_FORWARD = {
    "folds": whole(1),  # at most the evaluation period's rows: pipeline.evaluation checks with the data
    "window": one_of(*WINDOWS),
    "test_size": lambda v: None if v is None or (_is_int(v) and v >= 1) else "must be a whole number of rows (or null)",
}


def check_config(cfg: DictConfig) -> None:
    """Every user-settable value of a composed `train` config (or a logged config.yaml)."""
    missing = [name for name in SECTIONS if not isinstance(cfg.get(name), DictConfig)]
    if missing:
        raise LstmlabError(f"the config has no {', '.join(missing)} section; it is not an lstmlab train config")
    check_targets(cfg)
    check_data(cfg.data)
    check_evaluation(cfg)
    _check(cfg.trainer, "trainer", TRAINER)
    _check(cfg.model, "model", MODEL)
    _check(cfg.tracking, "tracking", TRACKING)
    _check(cfg.tracking, "tracking", {key: rule for key, rule in TRACKING_OPTIONAL.items() if key in cfg.tracking})
    for section in ("optimizer", "loss"):  # their keys are the Keras class's arguments: numbers
        node = cfg[section]
        if not isinstance(node.get("_target_"), str):
            raise LstmlabError(f"{section}._target_ must name a Keras class, e.g. keras.optimizers.Adam")
        for key, value in node.items():
            if key not in ("_target_", "name") and not (_is_number(value) or isinstance(value, bool)):
                raise LstmlabError(f"{section}.{key}={value!r} must be a number")
    if _is_number(cfg.optimizer.get("learning_rate")) and cfg.optimizer.learning_rate <= 0:
        raise LstmlabError(f"optimizer.learning_rate={cfg.optimizer.learning_rate} must be above 0")


def check_data(data_cfg: DictConfig) -> None:
    """The data section alone: what `data.load` needs and does not check again."""
    _check(data_cfg, "data", DATA)
    present = {key for key in DATA_OPTIONAL if key in data_cfg and not OmegaConf.is_missing(data_cfg, key)}
    _check(data_cfg, "data", {key: rule for key, rule in DATA_OPTIONAL.items() if key in present})
    if data_cfg.source == "csv" and ("path" not in present or not data_cfg.path):
        raise LstmlabError("data.path is not set; give the CSV file: data=csv data.path=prices.csv")
    if data_cfg.source == "synthetic":  # their values come from conf/data/synthetic.yaml only
        _check(data_cfg, "data", {key: DATA_OPTIONAL[key] for key in ("rows", "seed")})
    if data_cfg.val_fraction + data_cfg.test_fraction >= 1:
        raise LstmlabError(
            f"data.val_fraction + data.test_fraction = {data_cfg.val_fraction + data_cfg.test_fraction:g} "
            "leaves nothing to train on; keep the sum below 1"
        )
    scaler = data_cfg.get("scaler")
    if not isinstance(scaler, DictConfig) or not isinstance(scaler.get("_target_"), str):
        raise LstmlabError("data.scaler must name a scikit-learn scaler: data.scaler._target_=sklearn.preprocessing.MinMaxScaler")
    check_targets(data_cfg, "data")
    for key, value in scaler.items():  # the scalers' arguments: flags, numbers, ranges
        numbers = isinstance(value, ListConfig) and all(_is_number(v) for v in value)  # a range
        if key != "_target_" and not (_is_number(value) or isinstance(value, bool) or numbers):
            raise LstmlabError(f"data.scaler.{key!s}={value!r} must be a number, true/false or a list of numbers")


def check_targets(node: DictConfig, section: str = "") -> None:
    """Every `_target_` in `node` (the config's `section`, "" for all of it), resolved as
    `instantiate` will see it: only at a key of TARGETS, and one of its classes."""
    for path, keys in _instantiated(_resolved(node), section):
        reserved = [key for key in INSTANTIATE_KEYS if key in keys]
        if reserved:
            raise LstmlabError(f"{path}.{reserved[0]} is not allowed: give only _target_ and the class's arguments")
        target = keys.get("_target_")
        if path not in TARGETS:
            raise LstmlabError(
                f"{path}._target_={target!r} is not allowed: a config may name a class only at "
                + ", ".join(f"{key}._target_ ({what})" for key, (_, _, what) in TARGETS.items()))
        module, classes, what = TARGETS[path]
        name = target.removeprefix(module + ".") if isinstance(target, str) else None
        if name is None or name == target or name not in classes:
            raise LstmlabError(f"{path}._target_={target!r} is not allowed: it must name {what}, "
                               f"{module}.<{'|'.join(sorted(classes))}>")


def _resolved(node: DictConfig) -> dict[DictKeyType, object]:
    """`node` as `instantiate` would see it, without Hydra's own `hydra` node: its callbacks and
    plugins belong to the command, not the run (and a sweep checks its jobs' config before
    hydra.job.num, which the node refers to, exists)."""
    return {key: ("???" if OmegaConf.is_missing(node, key) else
                  OmegaConf.to_container(node[key], resolve=True, throw_on_missing=False)
                  if OmegaConf.is_config(node[key]) else node[key])
            for key in node if key != "hydra"}


def _instantiated(node: object, path: str) -> list[tuple[str, dict[str, object]]]:
    """(dotted path, node) of every mapping in `node` that `instantiate` would act on."""
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(node, dict):
        if "_target_" in node or any(key in node for key in INSTANTIATE_KEYS):
            found.append((path, node))
        for key, value in node.items():
            found += _instantiated(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _instantiated(value, f"{path}[{index}]")
    return found


def check_evaluation(cfg: DictConfig) -> None:
    """The evaluation section; a config logged before it existed has none: holdout."""
    evaluation = cfg.get("evaluation")
    if evaluation is None:
        return
    if not isinstance(evaluation, DictConfig):
        raise LstmlabError("evaluation must be a config group: evaluation=holdout or evaluation=walk_forward")
    _check(evaluation, "evaluation", EVALUATION)
    if evaluation.name == "walk_forward":
        _check(evaluation, "evaluation", WALK_FORWARD)


def _check(node: DictConfig, section: str, rules: dict[str, Callable[[object], str | None]]) -> None:
    for key, rule in rules.items():
        value = _get(node, key)
        if value is _MISSING:
            raise LstmlabError(f"{section}.{key} is missing from the config; set {section}.{key}=...")
        problem = rule(value)
        if problem:
            shown = list(value) if isinstance(value, ListConfig) else value
            raise LstmlabError(f"{section}.{key}={shown!r} {problem}")


_MISSING = object()


def _get(node: DictConfig, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return _MISSING
        node = node[part]
    return node
