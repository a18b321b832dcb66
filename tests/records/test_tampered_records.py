"""Records that cannot run code: a real run's config.yaml, scaler and model, tampered in the real
store as anyone who can write to it could, are refused by `lstmlab rerun` and `lstmlab forecast`
in one line (exit 2); each payload is shown to act when loaded the unsafe way, and never acts here."""

from __future__ import annotations

import contextlib
import inspect
import json
import pickle
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from test_forecast import artifact, damaged, model_files, one_error_line

from conftest import LSTMLAB, make_config, tiny_config, train_in_own_store, use_store
from lstmlab.commands.hydra_compat import VERSION_BASE
from lstmlab.paths import config_dir
from lstmlab.pipeline.checks import LOSSES, OPTIMIZERS, SCALERS, check_config
from lstmlab.pipeline.scalers import from_json, to_json

LOOKBACK = 8  # conftest's TINY


class TouchesMarker:
    """A pickle payload: loading it creates the file `path` (any code could run instead)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def pickle_payload(marker: Path) -> bytes:
    payload = pickle.dumps(TouchesMarker(marker))
    pickle.loads(payload)  # it is live: loading it writes the marker
    assert marker.exists()
    marker.unlink()
    return payload


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return train_in_own_store(tmp_path_factory.mktemp("tampered"), "model.units=[2,2]", "tracking.log_model=true")


@pytest.fixture
def store(logged: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    use_store(logged["uri"], monkeypatch)
    return logged


def runs() -> int:
    return len(mlflow.search_runs(search_all_experiments=True))


def tampered_config(run_id: str, section: str, node: dict) -> bytes:
    """The run's config.yaml with `section` (dotted) set to `node`."""
    config = yaml.safe_load(artifact(run_id, "config.yaml").read_text())
    *parents, key = section.split(".")
    owner = config
    for parent in parents:
        owner = owner[parent]
    owner[key] = node
    return yaml.safe_dump(config).encode()


def config_payloads(folder: Path) -> list[tuple[str, object, Path, str, bool]]:
    """(key, node, the file it would touch, what the line says, whether Hydra itself lets it act)
    for each way a record could run code. Hydra 1.3.8 blocks a few targets itself (os.system);
    open, joblib.load and joblib.dump it calls."""
    victim, marker = folder / "victim.txt", folder / "marker"
    pickled = folder / "payload.pkl"
    pickled.write_bytes(pickle_payload(marker))
    writes_marker = {"_target_": "joblib.dump", "value": "x", "filename": str(marker)}
    return [
        ("data.scaler", {"_target_": "builtins.open", "file": str(victim), "mode": "w"}, victim,
         "data.scaler._target_='builtins.open' is not allowed: it must name a scikit-learn scaler, "
         "sklearn.preprocessing.<MaxAbsScaler|MinMaxScaler|RobustScaler|StandardScaler>)", True),
        ("optimizer", {"_target_": "joblib.load", "filename": str(pickled)}, marker,
         "optimizer._target_='joblib.load' is not allowed: it must name a Keras optimizer, keras.optimizers.<", True),
        ("loss", writes_marker, marker,
         "loss._target_='joblib.dump' is not allowed: it must name a Keras loss, keras.losses.<", True),
        ("loss", {"_target_": "os.system", "command": f"touch {marker}"}, marker,
         "loss._target_='os.system' is not allowed: it must name a Keras loss, keras.losses.<", False),
        ("tracking.hook", {"_target_": "builtins.open", "file": str(marker), "mode": "w"}, marker,
         "tracking.hook._target_='builtins.open' is not allowed: a config may name a class only at optimizer._target_ "
         "(a Keras optimizer), loss._target_ (a Keras loss), data.scaler._target_ (a scikit-learn scaler))", True),
        ("optimizer", {"_target_": "keras.optimizers.Adam", "_args_": [writes_marker]}, marker,
         "optimizer._args_ is not allowed: give only _target_ and the class's arguments)", True),
        # an interpolation would be resolved by the rerun: one that decodes a node smuggles a target in
        ("tracking.run_name", f"${{oc.decode:'{{_target_: joblib.dump, value: x, filename: {marker}}}'}}", marker,
         "tracking.run_name is an interpolation ${...}; a recorded config holds values only)", True),
    ]


def keep(touched: Path) -> None:
    """The victim file with its content, or no marker."""
    if touched.name == "victim.txt":
        touched.write_text("keep me")
    else:
        touched.unlink(missing_ok=True)


def acted(touched: Path) -> bool:
    return touched.read_text() == "" if touched.name == "victim.txt" else touched.exists()


@pytest.mark.slow
def test_a_config_yaml_that_would_run_code_is_refused_and_runs_nothing(store, tmp_path, capsys):
    run_id, before = store["run_id"], runs()
    for key, node, touched, says, live in config_payloads(tmp_path):
        keep(touched)
        if live:  # instantiated as a rerun would, it acts (whatever fails after)
            with contextlib.suppress(InstantiationException):
                instantiate(OmegaConf.create({"node": node}).node)
            assert acted(touched), key
            keep(touched)
        with damaged(artifact(run_id, "config.yaml"), tampered_config(run_id, key, node)):
            for command in ("rerun", "forecast"):
                err = one_error_line(capsys, command, [run_id])
                assert f"run {run_id} (baseline): its config.yaml is damaged ({says}" in err, err
        assert not acted(touched), key
    assert runs() == before  # nothing was started


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_an_interpolation_in_a_record_cannot_read_the_environment_into_the_store(store, monkeypatch, capsys):
    monkeypatch.setenv("LSTMLAB_TEST_SECRET", "do-not-log-me")
    run_id, before = store["run_id"], runs()
    with damaged(artifact(run_id, "config.yaml"), tampered_config(run_id, "tracking.run_name", "${oc.env:LSTMLAB_TEST_SECRET}")):
        assert "tracking.run_name is an interpolation" in one_error_line(capsys, "rerun", [run_id])
    assert runs() == before


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_scaler_record_that_is_a_pickle_is_never_unpickled(store, tmp_path, capsys):
    run_id, marker = store["run_id"], tmp_path / "marker"
    payload = pickle_payload(marker)
    with damaged(artifact(run_id, "scaler.json"), payload):
        assert "its scaler.json is damaged (not JSON" in one_error_line(capsys, "forecast", [run_id])
    not_a_scaler = json.dumps({"format": "lstmlab.scalers/1", "features": {"class": "builtins.open", "params": {},
                                                                             "fitted": {}}, "target": {}}).encode()
    with damaged(artifact(run_id, "scaler.json"), not_a_scaler):
        assert "the features scaler 'builtins.open' is not one of MaxAbsScaler" in one_error_line(capsys, "forecast", [run_id])
    # a run recorded before scaler.json: its scaler.joblib is refused by name, not loaded
    legacy = artifact(run_id, "scaler.joblib")
    with damaged(artifact(run_id, "scaler.json"), None):
        try:
            legacy.write_bytes(payload)
            err = one_error_line(capsys, "forecast", [run_id])
        finally:
            legacy.unlink()
    assert (f"run {run_id} (baseline) recorded its scalers as scaler.joblib, a pickle, which lstmlab does not "
            f"load (a pickle can run any code): cannot scale new data like its training data; "
            f"`lstmlab rerun {run_id}` trains it again with scaler.json, then forecast the new run") in err
    assert not marker.exists()


def lambda_model(marker: Path):
    """A model whose Lambda layer writes `marker` when it runs (Python saved inside the .keras file)."""
    import keras

    inputs = keras.Input((LOOKBACK, 1))
    writes = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # noqa: S307 - the path inside its code
    touched = keras.layers.Lambda(writes)(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(touched)))


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_model_that_holds_code_is_refused(store, tmp_path, capsys):
    import keras

    run_id, marker = store["run_id"], tmp_path / "marker"
    saved = tmp_path / "model.keras"
    lambda_model(marker).save(saved)
    marker.unlink()  # building it ran the lambda once
    keras.saving.load_model(saved, safe_mode=False).predict(np.zeros((1, LOOKBACK, 1)), verbose=0)
    assert marker.exists()  # live: loaded unsafely and called, it writes the marker
    marker.unlink()
    with damaged(model_files(run_id) / "data" / "model.keras", saved.read_bytes()):
        err = one_error_line(capsys, "forecast", [run_id])
    assert f"the model of run {run_id} (models:/" in err
    assert "is refused: it holds Python code, which Keras' safe mode refuses (Requested the deserialization of a " \
           "`Lambda` layer" in err
    assert not marker.exists()

    description = model_files(run_id) / "MLmodel"
    exported = yaml.safe_load(description.read_text())
    exported["flavors"]["keras"]["save_exported_model"] = True  # mlflow.keras would load a TF SavedModel
    with damaged(description, yaml.safe_dump(exported).encode()):
        assert "is refused: it is not a .keras file in the model's data/" in one_error_line(capsys, "forecast", [run_id])


@pytest.mark.slow
def test_a_fresh_run_may_instantiate_only_the_allowed_classes(project_dir):
    marker = project_dir / "marker"
    typed = subprocess.run([*LSTMLAB, "train", "data=synthetic",
                            "+tracking.hook._target_=os.system", f"+tracking.hook.command='touch {marker}'"],
                           capture_output=True, text=True, timeout=300)
    assert typed.returncode == 2 and typed.stdout == ""
    assert typed.stderr.startswith("lstmlab train: error: tracking.hook._target_='os.system' is not allowed")
    assert typed.stderr.count("\n") == 1 and not marker.exists()
    for variant in ("baseline", "sgd", "rmsprop", "adagrad", "mae", "huber", "tanh"):  # what the configs name passes
        check_config(make_config(f"variant={variant}"))
    for scaler in sorted(SCALERS):
        check_config(tiny_config(f"data.scaler._target_=sklearn.preprocessing.{scaler}"))
    # as a sweep checks its jobs before they run: with Hydra's own node (callbacks, plugins), unresolvable yet
    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        check_config(compose(config_name="train", overrides=["hydra/sweeper=lstmlab_optuna"], return_hydra_config=True))


def test_the_allowed_classes_are_the_installed_libraries_own():
    import keras
    import sklearn.preprocessing

    def public(module, base) -> set[str]:
        return {name for name, value in vars(module).items()
                if inspect.isclass(value) and issubclass(value, base) and not name.startswith("_")}

    # every optimizer and loss class but the bases and the optimizers that wrap other optimizers
    assert public(keras.optimizers, keras.optimizers.Optimizer) - {
        "Optimizer", "LossScaleOptimizer", "MultiOptimizer"} == OPTIMIZERS
    assert public(keras.losses, keras.losses.Loss) - {"Loss"} == LOSSES
    assert {name for name in public(sklearn.preprocessing, object) if name.endswith("Scaler")} == SCALERS


@pytest.mark.parametrize("name", sorted(SCALERS))
def test_a_scaler_saved_as_numbers_transforms_exactly_as_the_fitted_one(name):
    import pandas as pd
    import sklearn.preprocessing

    rng = np.random.default_rng(0)
    values = pd.DataFrame({"Close": 100 + rng.standard_normal(50).cumsum(), "Volume": rng.uniform(1e6, 5e6, 50)})
    fitted = {role: getattr(sklearn.preprocessing, name)().fit(values) for role in ("features", "target")}
    rebuilt = from_json(to_json(fitted))
    for role in fitted:
        assert type(rebuilt[role]) is type(fitted[role]) and rebuilt[role].get_params() == fitted[role].get_params()
        np.testing.assert_array_equal(rebuilt[role].transform(values), fitted[role].transform(values))
        np.testing.assert_array_equal(rebuilt[role].inverse_transform(values.to_numpy()),
                                      fitted[role].inverse_transform(values.to_numpy()))
        assert list(rebuilt[role].feature_names_in_) == ["Close", "Volume"]


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_record_that_would_expand_without_bound_is_refused_at_once(store, capsys):
    """A config.yaml or MLmodel of YAML aliases nested nine deep: rerun printed nothing for 10
    minutes and grew to 2.9 GB (issue 23); now one line, read as events and never built."""
    from test_bounded_records import billion_laughs

    run_id, before = store["run_id"], runs()
    laughs = (billion_laughs() + artifact(run_id, "config.yaml").read_text()).encode()
    with damaged(artifact(run_id, "config.yaml"), laughs):
        for command in ("rerun", "forecast"):
            err = one_error_line(capsys, command, [run_id])
            assert (f"run {run_id} (baseline): its config.yaml is damaged (its YAML aliases (*name) expand to more "
                    "than 20,000 values; a record holds a few dozen and no aliases)") in err, err
        # the command as a user runs it: a hang would be killed by the timeout
        process = subprocess.run([*LSTMLAB, "rerun", run_id], capture_output=True,
                                 text=True, timeout=60)
        assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr[-2000:]
    description = model_files(run_id) / "MLmodel"
    with damaged(description, (billion_laughs() + description.read_text()).encode()):
        err = one_error_line(capsys, "forecast", [run_id])
        assert f"the model of run {run_id} (models:/" in err
        assert "is refused: its MLmodel is not a model description (its YAML aliases (*name) expand to more" in err
    assert runs() == before


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_recorded_key_this_lstmlab_does_not_read_is_one_line_and_starts_no_run(store, capsys):
    """It was silently ignored (the rerun trained something else than the record says), or, where
    MLflow refused it as a param, a 49-line traceback and a FAILED run on every try (issue 23)."""
    run_id, before = store["run_id"], runs()
    for key, node in (("trainer.early_stopping.warmup", 3), ("augment", {"noise": 0.1}), ("model.weird key!", 1)):
        with damaged(artifact(run_id, "config.yaml"), tampered_config(run_id, key, node)):
            err = one_error_line(capsys, "rerun", [run_id])
        assert err == (f"lstmlab rerun: error: run {run_id} (baseline): its config.yaml has the key {key}, which this "
                       "lstmlab does not read (a newer version's setting, or an edit), so it cannot rebuild it as "
                       "recorded\n"), err
    assert runs() == before
