"""Summary: what a finished run found, read back from its MLflow record.

The numbers come from the store, not from the process that trained: what a user reads at the
end of `lstmlab train` is what `lstmlab ui` and `lstmlab compare` will show.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from lstmlab.names import dataset_name
from lstmlab.secrets import mask

UI_DEFAULT = "http://127.0.0.1:5000"  # where `lstmlab ui` serves unless given --host/--port


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    run_name: str
    experiment_id: str
    experiment: str
    variant: str
    data: str  # e.g. "synthetic", "sp500", "csv-prices" (lstmlab.names.dataset_name)
    status: str
    pruned: bool
    val_rmse: float | None
    test_rmse: float | None
    naive_test_rmse: float | None
    test_skill: float | None
    epochs_run: int | None
    train_seconds: float | None
    server: str | None  # the tracking server's URL (password masked) when the store is one, else None

    @property
    def beat_naive(self) -> bool | None:
        if self.test_rmse is None or self.naive_test_rmse is None:
            return None
        return self.test_rmse < self.naive_test_rmse

    @property
    def url_path(self) -> str:
        """The run's page in the MLflow UI, relative to the server's address."""
        return f"#/experiments/{self.experiment_id}/runs/{self.run_id}"

    @property
    def url(self) -> str:
        return f"{(self.server or UI_DEFAULT).rstrip('/')}/{self.url_path}"


def summarize(run_id: str) -> RunSummary:
    """The summary of `run_id` in the current MLflow store."""
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    epochs = metrics.get("epochs_run")
    uri = mlflow.get_tracking_uri()
    return RunSummary(
        run_id=run.info.run_id,
        run_name=run.info.run_name,
        experiment_id=run.info.experiment_id,
        experiment=client.get_experiment(run.info.experiment_id).name,
        variant=tags.get("variant", run.info.run_name),
        data=dataset_name(params.get("data.source", "?"), params.get("data.path")),
        status=run.info.status,
        pruned=tags.get("state") == "pruned",
        val_rmse=metrics.get("val_rmse"),
        test_rmse=metrics.get("test_rmse"),
        naive_test_rmse=metrics.get("naive_test_rmse"),
        test_skill=metrics.get("test_skill"),
        epochs_run=int(epochs) if epochs is not None else None,
        train_seconds=metrics.get("train_seconds"),
        server=mask(uri) if uri.startswith(("http://", "https://")) else None,
    )
