"""What a command sets once per process: the Keras backend (before the first `import keras`)
and the MLflow store."""

from __future__ import annotations

import logging
import os
import sys

from omegaconf import DictConfig

from lstmlab.errors import LstmlabError

BACKENDS = ("tensorflow", "jax")

# A stop asked for from outside the job: the parallel launcher turns a worker's Ctrl-C into one.
# Training stops at the next batch boundary with KeyboardInterrupt, never halfway through a write
# to the MLflow store or the Optuna storage (a SQLite write cut short leaves the file locked and
# the other jobs unable to record their own ends).
_stop_requested = False


def request_stop(requested: bool = True) -> None:
    global _stop_requested
    _stop_requested = requested


def stop_requested() -> bool:
    return _stop_requested


def use_backend(name: str) -> str:
    """Select the Keras backend for this process; an error if Keras already runs on another."""
    if name not in BACKENDS:
        raise LstmlabError(f"trainer.backend={name!r} is unknown; use {' or '.join(BACKENDS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
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


def use_jax_compilation_cache() -> None:
    """Keep JAX's compiled programs on disk (before JAX is imported; its own variables win).

    Compiling the training step takes about 3 s of every run on JAX; a process that trains a
    model of a shape trained before (a rerun, the next trial of a sweep, the same variant again)
    loads it instead. The programs are the same, so are the results.
    Off with JAX_ENABLE_COMPILATION_CACHE=false.
    """
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(cache_home, "lstmlab", "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # small ones add up


def use_store(cfg: DictConfig) -> None:
    """Point MLflow at `tracking.uri` and the experiment. Null means MLflow's default store, set
    explicitly: MLflow keeps the last URI set in a process (a rerun, an earlier run), and a null
    must not inherit it."""
    import mlflow

    from lstmlab.tracking.open import open_store

    open_store(cfg.uri)
    mlflow.set_experiment(cfg.experiment)
