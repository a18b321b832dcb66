"""Model: the stacked LSTM regressor, built from `cfg.model` so it reads like the seed's code."""

from __future__ import annotations

import keras
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError


def check_model_config(cfg: DictConfig) -> None:
    """Reject values Keras would accept silently or fail on with a long traceback."""
    units = list(cfg.units) if not isinstance(cfg.units, int) else [cfg.units]
    if not units:
        raise LstmlabError("model.units is empty; give one entry per LSTM layer, e.g. [50, 50]")
    for n in units:
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise LstmlabError(f"model.units={units}: every entry must be a whole number above 0")
    if not 0 <= cfg.dropout < 1:
        raise LstmlabError(f"model.dropout={cfg.dropout} must be in [0, 1)")
    try:
        keras.activations.get(cfg.activation)
    except (ValueError, TypeError):
        raise LstmlabError(
            f"model.activation={cfg.activation!r} is not a Keras activation (try relu, tanh, leaky_relu)"
        ) from None


def build_model(cfg: DictConfig, lookback: int, n_features: int) -> keras.Sequential:
    """Input → [LSTM(units, activation) → Dropout] for each entry of `cfg.units` → Dense(1)."""
    check_model_config(cfg)
    units = list(cfg.units) if not isinstance(cfg.units, int) else [cfg.units]
    layers: list[keras.layers.Layer] = [keras.Input(shape=(lookback, n_features))]
    for i, n in enumerate(units):
        last = i == len(units) - 1
        lstm = keras.layers.LSTM(n, activation=cfg.activation, return_sequences=not last)
        layers.append(keras.layers.Bidirectional(lstm) if cfg.bidirectional else lstm)
        layers.append(keras.layers.Dropout(cfg.dropout))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name="lstm_forecaster")
