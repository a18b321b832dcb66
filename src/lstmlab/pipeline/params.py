"""Params: a run's config as the flat `model.units`-style params MLflow records, and the part of
them that configures what is trained (the identity `tracking.skip_finished` and compare's seed
groups both go by). No framework imports: a job can ask the store before Keras loads."""

from __future__ import annotations

import json
from collections.abc import Mapping

from omegaconf import DictConfig, DictKeyType, OmegaConf

from lstmlab.names import NOT_CONFIGURING, PARAM_DEFAULTS
from lstmlab.secrets import masked

SWEEP_NODES = ("trial", "confirm")  # set by the sweeper on its jobs (conf/train.yaml)


def flatten(node: object, prefix: str = "") -> dict[str, str]:
    """Nested config → {"model.units": "[50, 50]", ...}: MLflow params the UI can line up."""
    if isinstance(node, dict):
        flat: dict[str, str] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    value = json.dumps(node) if isinstance(node, list) else str(node)
    return {prefix.rstrip("."): value}


def run_config(cfg: DictConfig) -> dict[DictKeyType, object]:
    """The resolved config of a run as it is recorded (params, config.yaml), without the `trial`
    and `confirm` nodes: how a sweep reached the run is not how it is configured (and a rerun must
    not rejoin the study). Every URL's password is masked: a rerun takes its store from the environment it
    runs in (records.rerun), so the record loses nothing by it."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)  # what a DictConfig converts to (OmegaConf's type covers any node)
    return {key: masked(value) for key, value in container.items() if key not in SWEEP_NODES}


def run_params(cfg: DictConfig) -> dict[str, str]:
    return flatten(run_config(cfg))


def configuring(params: Mapping[str, str]) -> dict[str, str]:
    """The params that configure what is trained: all but NOT_CONFIGURING (the seed among them),
    with the default of a param the run predates filled in."""
    kept = {key: value for key, value in params.items() if key not in NOT_CONFIGURING}
    return {**PARAM_DEFAULTS, **kept}
