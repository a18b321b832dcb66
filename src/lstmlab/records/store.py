"""Reading back what a run left in MLflow: the run, its config.yaml, its scaler, its model.

No Keras import here: `rerun` must choose the Keras backend from the run's config first.
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import joblib
import mlflow
import yaml
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstmlab.errors import LstmlabError
from lstmlab.names import CONFIG_ARTIFACT, DATA_TAG, MODEL_NAME, SCALER_ARTIFACT

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


@contextmanager
def _downloaded(run: Run, name: str, what: str) -> Iterator[Path]:
    """The run's artifact `name`, downloaded into a folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="lstmlab-") as folder:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=name, dst_path=folder)
        except MlflowException:
            _refuse_missing(run, name, what)
            raise
        yield Path(path)


def _refuse_missing(run: Run, name: str, what: str) -> None:
    """Say why `name` could not be downloaded when the run's artifact listing tells (listed only
    then: a download that works needs no listing)."""
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


def load_config(run: Run, what: str = "rebuild it") -> DictConfig:
    """The resolved config the run was trained with (its `config.yaml`), checked like a new one."""
    from lstmlab.pipeline.checks import check_config

    with _downloaded(run, CONFIG_ARTIFACT, what) as path:
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
    with _downloaded(run, SCALER_ARTIFACT, "scale new data like its training data") as path:
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
