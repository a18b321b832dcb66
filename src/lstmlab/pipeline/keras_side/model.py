"""Model: the stacked LSTM regressor, built from `model_cfg` so it reads like the seed's code."""

from __future__ import annotations

import keras
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError


def build_model(model_cfg: DictConfig, lookback: int, n_features: int) -> keras.Sequential:
    """Input → [LSTM(units, activation) → Dropout] for each entry of `model_cfg.units` → Dense(1)."""
    units = list(model_cfg.units) if not isinstance(model_cfg.units, int) else [model_cfg.units]
    layers: list[keras.layers.Layer] = [keras.Input(shape=(lookback, n_features))]
    for i, n in enumerate(units):
        last = i == len(units) - 1
        lstm = keras.layers.LSTM(n, activation=model_cfg.activation, return_sequences=not last)
        layers.append(keras.layers.Bidirectional(lstm) if model_cfg.bidirectional else lstm)
        layers.append(keras.layers.Dropout(model_cfg.dropout))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name="lstm_forecaster")


def check_activation(name: str) -> None:
    """The activation is one Keras knows (pipeline.checks checks every other value, without Keras)."""
    try:
        keras.activations.get(name)
    except (ValueError, TypeError):
        raise LstmlabError(
            f"model.activation={name!r} is not a Keras activation (try relu, tanh, leaky_relu)"
        ) from None
