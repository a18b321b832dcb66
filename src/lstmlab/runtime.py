"""Runtime: what a job sets once, before any Keras import: the Keras backend and the MLflow store.

`run_experiment` sets both once per job (a run, a multirun job, a sweep trial, a rerun): the
backend first, the store once the config and data have passed their checks. The sweeper's
parent run and the read-only commands set only the store; forecast only the backend.
"""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig

from lstmlab import console
from lstmlab.errors import LstmlabError
from lstmlab.paths import cache_home

BACKENDS = ("tensorflow", "jax")

def use_backend(name: str) -> str:
    """Select the Keras backend for this process (`name`: one of BACKENDS, as pipeline.checks
    checked it); an error if Keras already runs on another."""
    console.quiet_environment()  # before TensorFlow or MLflow are imported
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != name:
            raise LstmlabError(
                f"trainer.backend={name} but Keras already runs on {current} in this process; "
                "run it in a new process (or set KERAS_BACKEND)"
            )
        return current
    if name == "jax":
        use_jax_compilation_cache()
        # JAX logs at INFO that it found no TPU; under Hydra's job logging that is every job's noise.
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
        try:
            import jax  # noqa: F401
        except ImportError:
            raise LstmlabError("trainer.backend=jax needs JAX: pip install -e '.[jax]'") from None
    os.environ["KERAS_BACKEND"] = name
    return name


def import_keras():
    """Keras on the backend `use_backend` chose, imported with its native start-up lines hidden
    (see console.native_stderr_hidden). Call it where a command first needs Keras."""
    if "keras" not in sys.modules:
        with console.native_stderr_hidden():
            import keras  # noqa: F401
    return sys.modules["keras"]


def use_jax_compilation_cache() -> None:
    """Keep JAX's compiled programs on disk (before JAX is imported; its own variables win).

    Compiling the training step takes about 3 s of every run on JAX; a process that trains a
    model of a shape trained before (a rerun, the next trial of a sweep, the same variant again)
    loads it instead. The programs are the same, so are the results.
    Off with JAX_ENABLE_COMPILATION_CACHE=false.
    """
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache_home() / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # small ones add up


def use_store(cfg: DictConfig):
    """Point MLflow at `tracking.uri` and the experiment, checked writable (runs are written
    next); the experiment (an `mlflow.entities.Experiment`). Null means MLflow's default store,
    set explicitly: MLflow keeps the last URI set in a process (a rerun, an earlier run), and a
    null must not inherit it."""
    import mlflow

    from lstmlab.tracking.open import open_store
    from lstmlab.tracking.writable import check_artifacts_writable, check_store_writable

    uri = open_store(cfg.uri)
    check_store_writable(uri)  # runs are written next: a read-only store is one line, not a half run
    experiment = mlflow.set_experiment(cfg.experiment)
    check_artifacts_writable(experiment.artifact_location)
    return experiment


def check_store(cfg: DictConfig) -> None:
    """Say now, writing nothing, when `tracking.uri` is a tracking server that does not answer."""
    from lstmlab.store_urls import usable
    from lstmlab.tracking.reach import check_server

    check_server(usable(cfg.uri) if cfg.uri else "")  # http://user:password@host: credentials apart
