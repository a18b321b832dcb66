"""Metrics: forecast errors in price units on the held-out test part, against the naive forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(root_mean_squared_error(actual, predicted))


def directional_accuracy(actual: np.ndarray, predicted: np.ndarray, previous: np.ndarray) -> float:
    """Share of days where the forecast moves the same way from yesterday's price as the price did."""
    return float(np.mean(np.sign(predicted - previous) == np.sign(actual - previous)))


def test_metrics(actual: np.ndarray, naive: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Final metrics of DESIGN.md: the model's errors, the naive forecast's (`naive`: the previous
    day's prices), and the skill."""
    model_rmse, naive_rmse = rmse(actual, predicted), rmse(actual, naive)
    return {
        "test_rmse": model_rmse,
        "test_mae": float(mean_absolute_error(actual, predicted)),
        "test_mape": float(100 * mean_absolute_percentage_error(actual, predicted)),
        "test_r2": float(r2_score(actual, predicted)),
        "test_directional_accuracy": directional_accuracy(actual, predicted, naive),
        "naive_test_rmse": naive_rmse,
        "naive_test_mae": float(mean_absolute_error(actual, naive)),
        "test_skill": 1.0 - model_rmse / naive_rmse if naive_rmse > 0 else float("nan"),
    }


def predictions_table(dates: pd.DatetimeIndex, actual: np.ndarray, naive: np.ndarray,
                      predicted: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"actual": actual, "predicted": predicted, "naive": naive},
        index=pd.DatetimeIndex(dates, name="date"),
    )
