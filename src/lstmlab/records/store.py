"""Reading back what a run left in MLflow: the run, its config.yaml, its scaler, its model.

A record is data, never code: anyone who can write to a shared store could have edited it. Its
config passes pipeline.checks (only allowed classes, no interpolation), its scalers are numbers
(pipeline.scalers, no pickle), its model loads in Keras' safe mode.
No Keras import here: `rerun` must choose the Keras backend from the run's config first.
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import yaml
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lstmlab.errors import LstmlabError
from lstmlab.names import (
    CONFIG_ARTIFACT,
    DATA_TAG,
    EVIDENCE_ID_TAG,
    MODEL_NAME,
    PICKLED_SCALER_ARTIFACT,
    SCALER_ARTIFACT,
)
from lstmlab.pipeline.checks import check_config
from lstmlab.pipeline.scalers import from_json
from lstmlab.records.bounded_yaml import MAX_BYTES, bounded_text
from lstmlab.records.record_keys import unknown_key
from lstmlab.secrets import mask

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
    raise LstmlabError(f"unknown run id {run_id!r} in {mask(mlflow.get_tracking_uri())}")


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
    if name == SCALER_ARTIFACT and PICKLED_SCALER_ARTIFACT in names:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}) recorded its scalers as {PICKLED_SCALER_ARTIFACT}, a "
            f"pickle, which lstmlab does not load (a pickle can run any code): cannot {what}; "
            f"`lstmlab rerun {run.info.run_id}` trains it again with {SCALER_ARTIFACT}, then forecast the new run"
        )
    if name not in names:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}, {run.info.status}) has no {name}: "
            f"cannot {what}; only runs that finished under lstmlab train have it"
        )


def load_config(run: Run, what: str = "rebuild it") -> DictConfig:
    """The resolved config the run was trained with (its `config.yaml`), checked like a new one:
    measured before it is built (records.bounded_yaml), holding values only, and only keys this
    lstmlab reads (records.record_keys)."""
    with _downloaded(run, CONFIG_ARTIFACT, what) as path:
        try:
            cfg = OmegaConf.create(bounded_text(path))
            if not isinstance(cfg, DictConfig):
                raise ValueError("it holds no key: value mapping")
            container = OmegaConf.to_container(cfg, resolve=False)
            assert isinstance(container, dict)  # what a DictConfig converts to
            interpolated = _interpolation(container)
            if interpolated:
                raise ValueError(f"{interpolated} is an interpolation ${{...}}; a recorded config holds values only")
            check_config(cfg)
        except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError, ValueError, LstmlabError) as error:
            raise LstmlabError(_damaged(run, CONFIG_ARTIFACT, error, what)) from None
    unknown = unknown_key(container)
    if unknown:
        raise LstmlabError(f"run {run.info.run_id} ({run.info.run_name}): its {CONFIG_ARTIFACT} has the key {unknown}, "
                           f"which this lstmlab does not read (a newer version's setting, or an edit), so it cannot "
                           f"{what} as recorded")
    return cfg


def _interpolation(node: object, path: str = "") -> str | None:
    """The first key whose value is an interpolation. A logged config is resolved, so one there was
    written by hand, e.g. `${oc.env:AWS_SECRET_ACCESS_KEY}`, which a rerun would log as a param."""
    items: Iterable[tuple[object, object]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = ((f"[{index}]", value) for index, value in enumerate(node))
    else:
        return path if isinstance(node, str) and "${" in node else None
    for key, value in items:
        found = _interpolation(value, f"{path}{key}" if str(key).startswith("[") or not path else f"{path}.{key}")
        if found:
            return found
    return None


def load_scalers(run: Run) -> dict:
    """{"features": scaler, "target": scaler}, fitted on the run's training part."""
    with _downloaded(run, SCALER_ARTIFACT, "scale new data like its training data") as path:
        try:
            size = path.stat().st_size
            if size > MAX_BYTES:  # a few arrays of one number per feature: kilobytes
                raise ValueError(f"it is {size:,} bytes; a record is at most {MAX_BYTES:,}")
            return from_json(path.read_bytes())
        except ValueError as error:
            raise LstmlabError(_damaged(run, SCALER_ARTIFACT, error, "scale new data")) from None


def _damaged(run: Run, name: str, error: BaseException, what: str) -> str:
    reason = " ".join(str(error).split()) or type(error).__name__
    if not isinstance(error, LstmlabError):  # a library's words may go on; a check's line is whole
        reason = reason[:160]
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
    if not models and EVIDENCE_ID_TAG in run.data.tags:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}) was loaded from a campaign's records, which keep no "
            f"model; `lstmlab rerun {run.info.run_id}` trains it again from its config.yaml, then forecast the new run")
    if not models:
        raise LstmlabError(
            f"run {run.info.run_id} ({run.info.run_name}) has no logged model: it was trained with "
            "tracking.log_model=false; rerun it with the model logged: "
            f"lstmlab train ... tracking.log_model=true"
        )
    return models[0].model_uri


def load_model(run: Run, uri: str):
    """The run's Keras model (`uri`: `model_uri(run)`), loaded with Keras' `safe_mode`: a model
    whose files would run code as they load (a Lambda layer's Python, a TensorFlow SavedModel's
    graph, which mlflow.keras loads when its MLmodel says save_exported_model) is refused.
    Call it once `runtime.use_backend` chose the run's backend."""
    import mlflow.keras
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="lstmlab-") as folder:
        try:
            # Its description first, then only the files the keras flavor reads.
            location = mlflow.get_logged_model(uri.removeprefix("models:/")).artifact_location.rstrip("/")
            mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/MLmodel", dst_path=folder)
            try:
                bounded_text(Path(folder) / "MLmodel")  # measured before MLflow builds it
            except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
                raise LstmlabError(_refused(run, uri, f"its MLmodel is not a model description ({error})")) from None
            flavor = Model.load(Path(folder) / "MLmodel").flavors.get("keras") or {}
            if flavor.get("save_exported_model") or flavor.get("data", "data") != "data":
                raise LstmlabError(_refused(run, uri, "it is not a .keras file in the model's data/ "
                                            "(a TensorFlow SavedModel runs its own graph code as it loads)"))
            mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/data", dst_path=folder)
            return mlflow.keras.load_model(folder, load_model_kwargs={"safe_mode": True})
        except LstmlabError:
            raise
        except Exception as error:  # noqa: BLE001 - missing or damaged files raise anything from I/O to Keras
            reason = " ".join(str(error).split()) or type(error).__name__
            if "safe_mode" in reason:  # Keras names the switch it will not have flipped
                raise LstmlabError(_refused(run, uri, f"it holds Python code, which Keras' safe mode refuses "
                                                      f"({reason.split('. ')[0][:120]})")) from None
            reason = reason[:160]
            raise LstmlabError(
                f"the model of run {run.info.run_id} ({uri}) cannot be loaded: its files are missing or damaged "
                f"({reason}); train the run again"
            ) from None


def _refused(run: Run, uri: str, why: str) -> str:
    return (f"the model of run {run.info.run_id} ({uri}) is refused: {why}; lstmlab loads only models "
            "that run no code of their own: train the run again")


def check_data_file(data: DictConfig, run_id: str, hint: str) -> None:
    """A clear line when the CSV a run was trained on has gone (moved, deleted)."""
    if data.get("source") == "csv" and data.get("path") and not Path(data.path).is_file():
        raise LstmlabError(f"run {run_id} read its data from {data.path}, which no longer exists; {hint}")
