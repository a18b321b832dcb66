"""Metrics: forecast errors in price units on the held-out test part, against the naive forecast;
a run's final metrics and predictions table from its folds' forecasts.

Imports scikit-learn's metrics (seconds): only the trained side (keras_side) uses this module, so
a config or data error is found without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)

from lstmlab.pipeline.data import Dataset


def rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(root_mean_squared_error(actual, predicted))


def directional_accuracy(actual: np.ndarray, predicted: np.ndarray, previous: np.ndarray) -> float:
    """Share of days where the forecast moves the same way from yesterday's price as the price did."""
    return float(np.mean(np.sign(predicted - previous) == np.sign(actual - previous)))


def test_metrics(actual: np.ndarray, naive: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Final test metrics (docs/contracts.md, "Metrics"): the model's errors, the naive forecast's (`naive`: the previous
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


@dataclass(frozen=True)
class FoldForecast:
    """One fold's trained forecasts in price units."""

    data: Dataset
    val_predicted: np.ndarray
    test_predicted: np.ndarray
    seconds: float
    epochs_run: int

    def metrics(self) -> dict[str, float]:
        """What each fold logs at step = its number."""
        return {
            "fold_test_rmse": rmse(self.data.test.actual, self.test_predicted),
            "fold_naive_test_rmse": rmse(self.data.test.actual, self.data.test.previous),
            "fold_val_rmse": rmse(self.data.val.actual, self.val_predicted),
        }


def summarize(cfg: DictConfig, folds: list[FoldForecast]) -> tuple[dict[str, float], pd.DataFrame]:
    """Final metrics (docs/contracts.md, "Metrics") and the predictions table of a run's folds.

    Holdout: exactly the single split's numbers. Walk-forward: test metrics over every fold's test
    days pooled, `val_rmse` the mean of the folds', time and epochs summed over folds (the cost).
    """
    tests = [f.data.test for f in folds]  # consecutive days: pooled in time order
    dates = tests[0].dates.append([p.dates for p in tests[1:]])
    actual, naive = np.concatenate([p.actual for p in tests]), np.concatenate([p.previous for p in tests])
    predicted = np.concatenate([f.test_predicted for f in folds])
    val_rmse = [rmse(f.data.val.actual, f.val_predicted) for f in folds]
    metrics = {
        "val_rmse": float(np.mean(val_rmse)),
        **test_metrics(actual, naive, predicted),
        "train_seconds": float(sum(f.seconds for f in folds)),
        "epochs_run": float(sum(f.epochs_run for f in folds)),
    }
    table = predictions_table(dates, actual, naive, predicted)
    # every run's days carry their fold (a holdout run's are fold 1), so effects can pair by fold
    table["fold"] = np.concatenate([np.full(len(f.test_predicted), k) for k, f in enumerate(folds, 1)])
    return metrics, table
