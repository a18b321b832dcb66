"""Reading back what a run left in MLflow: the run, its config.yaml, its scaler, its model.

No Keras import here: `rerun` must choose the Keras backend from the run's config first.
"""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import joblib
import mlflow
import yaml
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstmlab.errors import LstmlabError
from lstmlab.records.names import CONFIG_ARTIFACT, DATA_TAG, MODEL_NAME, SCALER_ARTIFACT
from lstmlab.tracking.open import open_store


def use_current_store() -> str:
    """The store a fresh `lstmlab` process uses: $MLFLOW_TRACKING_URI, else MLflow's default.

    Set explicitly because MLflow keeps the last `set_tracking_uri` for the whole process. The
    commands that read runs back (compare, rerun, forecast) open it here, so here MLflow's
    progress bar per downloaded artifact, noise on a command's output, is turned off (unless the
    user set MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR).
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return open_store(os.environ.get("MLFLOW_TRACKING_URI"))


MIN_PREFIX = 8  # compare's tables show run ids this short


def get_run(run_id: str) -> Run:
    """The run with this id, or with this unique id prefix (at least 8 characters)."""
    try:
        return mlflow.get_run(run_id)
    except MlflowException:
        pass
    if MIN_PREFIX <= len(run_id) < 32 and all(c in string.hexdigits for c in run_id):
        matches = [
            run for run in mlflow.search_runs(search_all_experiments=True, output_format="list")
            if run.info.run_id.startswith(run_id.lower())
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise LstmlabError(f"run id prefix {run_id!r} matches {len(matches)} runs; give more of the id")
    raise LstmlabError(f"unknown run id {run_id!r} in {mlflow.get_tracking_uri()}")


def _download(run: Run, name: str, what: str) -> Path:
    names = {entry.path for entry in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    if not names and run.info.status == "FINISHED" and DATA_TAG in run.data.tags:  # trained by lstmlab
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}) has no artifacts left in {run.info.artifact_uri} "
            f"(deleted or moved?): cannot {what}"
        )
    if name not in names:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}, {run.info.status}) has no {name}: "
            f"cannot {what}; only runs that finished under lstmlab train have it"
        )
    folder = tempfile.mkdtemp(prefix="lstmlab-")
    return Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=name, dst_path=folder))


def load_config(run: Run, what: str = "rebuild it") -> DictConfig:
    """The resolved config the run was trained with (its `config.yaml`), checked like a new one."""
    from lstmlab.pipeline.checks import check_config

    path = _download(run, CONFIG_ARTIFACT, what)
    try:
        cfg = OmegaConf.load(path)
        if not isinstance(cfg, DictConfig):
            raise ValueError("it holds no key: value mapping")
        check_config(cfg)
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError, ValueError, LstmlabError) as error:
        raise LstmlabError(_damaged(run, CONFIG_ARTIFACT, error, what)) from None
    return cfg


def load_scalers(run: Run) -> dict:
    """{"features": scaler, "target": scaler}, fitted on the run's training part."""
    path = _download(run, SCALER_ARTIFACT, "scale new data like its training data")
    try:
        scalers = joblib.load(path)
    except Exception as error:  # noqa: BLE001 - unpickling garbage raises anything
        raise LstmlabError(_damaged(run, SCALER_ARTIFACT, error, "scale new data")) from None
    if not (isinstance(scalers, dict) and all(hasattr(scalers.get(k), "transform") for k in ("features", "target"))):
        raise LstmlabError(_damaged(run, SCALER_ARTIFACT, ValueError("not the features and target scalers"), "scale new data"))
    return scalers


def _damaged(run: Run, name: str, error: BaseException, what: str) -> str:
    reason = " ".join(str(error).split())[:160] or type(error).__name__
    return (f"run {run.info.run_id} ({run.info.run_name}): its {name} is damaged ({reason}), so it cannot "
            f"{what}; train it again")


def model_uri(run: Run) -> str:
    """`models:/<id>` of the Keras model logged by the run (MLflow 3 logged model)."""
    models = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}' AND name = '{MODEL_NAME}'",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
        output_format="list",
    )
    if not models:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}) has no logged model: it was trained with "
            "tracking.log_model=false; rerun it with the model logged: "
            f"lstmlab train ... tracking.log_model=true"
        )
    return models[0].model_uri


def check_data_file(data: DictConfig, run_id: str, hint: str) -> None:
    """A clear line when the CSV a run was trained on has gone (moved, deleted)."""
    if data.get("source") == "csv" and data.get("path") and not Path(data.path).is_file():
        raise LstmlabError(f"run {run_id} read its data from {data.path}, which no longer exists; {hint}")
