"""Keras backend choice: must happen before the first `import keras` in the process."""

from __future__ import annotations

import os
import sys

from lstmlab.errors import LstmlabError

BACKENDS = ("tensorflow", "jax")


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
        try:
            import jax  # noqa: F401
        except ImportError:
            raise LstmlabError("trainer.backend=jax needs JAX: pip install -e '.[jax]'") from None
    os.environ["KERAS_BACKEND"] = name
    return name
