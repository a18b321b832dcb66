"""Keras on JAX end to end: `trainer.backend=jax` in a process of its own (a process has one backend)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import TINY

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed: pip install -e '.[jax]'"
)

# Two runs of one config (the second from JAX's compilation cache), then the first run's logged model
# loaded back and scored again.
SCRIPT = """
import json, sys
import mlflow
import numpy as np
from hydra import compose, initialize_config_dir
from lstmlab.paths import config_dir
from lstmlab.pipeline.data import prepare
from lstmlab.pipeline.experiment import run_experiment

with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
    cfg = compose(config_name="train", overrides=sys.argv[1:])
first, second = run_experiment(cfg), run_experiment(cfg)
import keras

run = mlflow.get_run(first["run_id"])
model = mlflow.keras.load_model(f"runs:/{first['run_id']}/model")
data = prepare(cfg.data)
predicted = data.to_price(model.predict(data.val.x, verbose=0))
print(json.dumps({
    "first": first, "second": second, "backend": keras.backend.backend(),
    "tag": run.data.tags["keras_backend"], "tensorflow_imported": "tensorflow" in sys.modules,
    "reloaded_val_rmse": float(np.sqrt(np.mean((predicted - data.val.actual) ** 2))),
}))
"""


def test_a_run_on_jax_is_deterministic_tagged_and_its_model_loads_back(tmp_path):
    overrides = [*TINY, "model.units=[4,4]", "trainer.backend=jax", "tracking.log_model=true"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # conftest sets tensorflow
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # JAX's compilation cache goes there
    result = subprocess.run([sys.executable, "-c", SCRIPT, *overrides], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and report["tag"] == "jax"
    assert not report["tensorflow_imported"]
    timing = {"train_seconds", "run_id"}
    first = {k: v for k, v in report["first"].items() if k not in timing}
    second = {k: v for k, v in report["second"].items() if k not in timing}
    assert first == second
    assert report["reloaded_val_rmse"] == pytest.approx(first["val_rmse"], rel=1e-6)
    # the second run loaded what the first compiled, and computed the same
    assert any((tmp_path / "cache" / "lstmlab" / "jax").iterdir())


def test_a_sweep_on_jax_runs_its_trials_on_jax(tmp_path):
    """The sweeper's process must not fix the backend to TensorFlow before the first trial."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-m", "lstmlab.cli", "train", "-m", "hparams_search=variants",
         "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}", *TINY,
         "model.units=[4,4]", "model.bidirectional=false", "trainer.backend=jax"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="variants-synthetic", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.optuna_trial != ''")
    assert set(runs["tags.keras_backend"]) == {"jax"} and len(runs) == 2
