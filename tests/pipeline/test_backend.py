"""Keras on JAX end to end: `trainer.backend=jax` in a process of its own (a process has one backend)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import LSTMLAB, TINY

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="jax is not installed: pip install -e '.[jax]'"
)]

# One run of a config, then its logged model loaded back and scored again.
SCRIPT = """
import json, sys
import mlflow
import numpy as np
from hydra import compose, initialize_config_dir
from lstmlab.commands.hydra_compat import VERSION_BASE
from lstmlab.paths import config_dir
from lstmlab.pipeline.data import holdout_dataset
from lstmlab.pipeline.experiment import run_experiment

with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
    cfg = compose(config_name="train", overrides=sys.argv[1:])
first = run_experiment(cfg)
import keras

run = mlflow.get_run(first.run_id)
model = mlflow.keras.load_model(f"runs:/{first.run_id}/model")
data = holdout_dataset(cfg.data)
predicted = data.to_price(model.predict(data.val.x, verbose=0))
print(json.dumps({
    "metrics": dict(first.metrics), "backend": keras.backend.backend(),
    "tag": run.data.tags["keras_backend"], "tensorflow_imported": "tensorflow" in sys.modules,
    "reloaded_val_rmse": float(np.sqrt(np.mean((predicted - data.val.actual) ** 2))),
}))
"""


def test_a_run_on_jax_is_deterministic_tagged_reuses_compiled_programs_and_its_model_loads_back(tmp_path):
    overrides = [*TINY, "model.units=[4,4]", "trainer.backend=jax", "tracking.log_model=true"]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}  # conftest sets tensorflow
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # JAX's compilation cache goes there
    cache = tmp_path / "cache" / "lstmlab" / "jax"

    def run_in_new_process() -> tuple[dict, set[str]]:
        result = subprocess.run([sys.executable, "-c", SCRIPT, *overrides], env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1]), {p.name for p in cache.iterdir()}

    first, compiled = run_in_new_process()
    second, cached_after = run_in_new_process()
    assert first["backend"] == "jax" and first["tag"] == "jax"
    assert not first["tensorflow_imported"]
    timing = {"train_seconds"}
    assert {k: v for k, v in first["metrics"].items() if k not in timing} == {
        k: v for k, v in second["metrics"].items() if k not in timing}
    assert first["reloaded_val_rmse"] == pytest.approx(first["metrics"]["val_rmse"], rel=1e-6)
    # every program is written when compiled (min compile time 0): the second process compiled
    # nothing new, it loaded all of them from the first's cache
    assert compiled and cached_after == compiled


def test_a_sweep_on_jax_runs_its_trials_on_jax(tmp_path):
    """The sweeper's process must not fix the backend to TensorFlow before the first trial."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    result = subprocess.run(
        [*LSTMLAB, "train", "-m", "hparams_search=variants",
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
