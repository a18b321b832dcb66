"""Runtime: the Keras backend, chosen once per process before any Keras import.

`run_experiment` chooses it once per job (a run, a multirun job, a sweep trial, a rerun) from
`trainer.backend`, `forecast` from the run's record; `import_keras` then imports Keras with its
start-up noise hidden. (The MLflow store a job writes to is opened by lstmlab.tracking.open.)
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

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


def import_keras() -> ModuleType:
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
