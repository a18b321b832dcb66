"""Model: the stacked LSTM regressor, built from `cfg.model` so it reads like the seed's code."""

from __future__ import annotations

import keras
from omegaconf import DictConfig


def build_model(cfg: DictConfig, lookback: int, n_features: int) -> keras.Sequential:
    """Input → [LSTM(units, activation) → Dropout] for each entry of `cfg.units` → Dense(1)."""
    units = list(cfg.units) if not isinstance(cfg.units, int) else [cfg.units]
    layers: list[keras.layers.Layer] = [keras.Input(shape=(lookback, n_features))]
    for i, n in enumerate(units):
        last = i == len(units) - 1
        lstm = keras.layers.LSTM(n, activation=cfg.activation, return_sequences=not last)
        layers.append(keras.layers.Bidirectional(lstm) if cfg.bidirectional else lstm)
        layers.append(keras.layers.Dropout(cfg.dropout))
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name="lstm_forecaster")
