"""Hydra's `instantiate` for the one class a config node may name, on Hydra 1.3 and 1.4 alike.

Hydra 1.4 wants an execution whitelist on every `instantiate` (the targets it may call): without
one it warns that Hydra 1.5 will refuse. pipeline.checks.check_targets has already let only a
Keras optimizer, a Keras loss or a scikit-learn scaler through, so the whitelist is that one
class, by the name the config gives and by where it lives (`keras.losses.Huber` is
`keras.src.losses.losses.Huber`: 1.4 checks the class of a callable result as well). Hydra 1.3
has no whitelist and would hand the argument to the class; tests/pipeline/test_model.py fails
when either changes.
"""

from __future__ import annotations

import importlib
from typing import Any

import hydra.utils
from omegaconf import DictConfig

WHITELISTS = hasattr(hydra.utils, "execution_whitelist")  # Hydra 1.4 and later


def instantiate(node: DictConfig) -> Any:
    """`node` (`_target_` + arguments, checked by check_targets) built by Hydra."""
    if not WHITELISTS:
        return hydra.utils.instantiate(node)
    return hydra.utils.instantiate(node, _execution_whitelist_=_names(str(node._target_)))


def _names(target: str) -> list[str]:
    """The class `target` names, by that name and by where it lives; the name alone when it names
    nothing importable (instantiate then says so, in its own words)."""
    module, _, name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return [target]
    return [target, f"{found.__module__}.{found.__qualname__}"]
