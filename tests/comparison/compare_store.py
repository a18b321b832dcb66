"""A real MLflow store filled through MLflow's client with runs of known metrics and predictions:
what compare's tests read, and the numbers they recompute compare's answers from."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

DAYS = pd.bdate_range("2018-01-02", periods=60, name="date")
ACTUAL = 100 + np.cumsum(np.random.default_rng(0).normal(size=len(DAYS)))
NAIVE = np.r_[ACTUAL[0] - 0.5, ACTUAL[:-1]]  # tomorrow = today
NAIVE_RMSE = float(np.sqrt(np.mean((ACTUAL - NAIVE) ** 2)))


def rms(errors: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(errors))))


def final_metrics(val_rmse: float, seed: int) -> dict[str, float]:
    test_rmse = 1.1 * val_rmse + 0.01 * seed
    return {
        "val_rmse": val_rmse,
        "test_rmse": test_rmse,
        "test_mae": 0.8 * val_rmse,
        "test_mape": 2.0 * val_rmse,
        "test_r2": 1.0 - val_rmse / 10,
        "test_directional_accuracy": 0.5 + 0.01 * seed,
        "naive_test_rmse": 1.2,
        "naive_test_mae": 1.0,
        "test_skill": 1.0 - test_rmse / 1.2,
        "train_seconds": 3.0 + seed,
        "epochs_run": 2.0,
    }


class Store:
    """Runs logged through MLflow's client with chosen start times, so "latest" is known."""

    def __init__(self, experiment: str = "lstmlab"):
        self.client = MlflowClient()
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.clock = 1_700_000_000_000

    def log(self, variant: str, seed: int, metrics: dict[str, float] | None, *, status: str = "FINISHED",
            lr: str = "0.001", tags: dict[str, str] | None = None, run_name: str | None = None,
            errors: np.ndarray | None = None, params: dict[str, str] | None = None) -> str:
        """A run; with `errors`, a predictions.csv whose predicted = ACTUAL + errors on DAYS."""
        self.clock += 1000
        all_tags = {"variant": variant, "baseline": str(variant == "baseline").lower(),
                    "data_sha256": "d" * 64, **(tags or {})}
        run = self.client.create_run(self.experiment_id, start_time=self.clock, tags=all_tags,
                                     run_name=run_name or variant)
        params = {
            "model.units": "[50, 50]",
            "optimizer.learning_rate": lr,
            "tracking.variant": variant,
            "trainer.seed": str(seed),
            # how a run is recorded differs from run to run but must not split a group
            "tracking.uri": f"sqlite:///somewhere-{seed}.db",
            "trainer.verbose": "auto" if seed % 2 else "0",
            "data.source": "sp500",
            **(params or {}),
        }
        if errors is not None:  # the test metrics are those of the predictions, as a trained run's are
            metrics = {**(metrics or {}), "test_rmse": rms(errors), "naive_test_rmse": NAIVE_RMSE,
                       "test_skill": 1 - rms(errors) / NAIVE_RMSE}
            with tempfile.TemporaryDirectory() as folder:
                table = pd.DataFrame({"actual": ACTUAL, "predicted": ACTUAL + errors, "naive": NAIVE}, index=DAYS)
                table.to_csv(Path(folder) / "predictions.csv")
                self.client.log_artifact(run.info.run_id, str(Path(folder) / "predictions.csv"))
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(key, value, self.clock, 2) for key, value in (metrics or {}).items()],
            params=[Param(key, value) for key, value in params.items()],
        )
        if status != "RUNNING":
            self.client.set_terminated(run.info.run_id, status, end_time=self.clock + 500)
        return run.info.run_id
