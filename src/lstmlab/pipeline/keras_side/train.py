"""Train: the optimizer and loss from config, seeds, fit with the project's callbacks, predict."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.pipeline import metrics
from lstmlab.pipeline.data import Dataset
from lstmlab.pipeline.epochs import EpochHook, epoch_step
from lstmlab.pipeline.instantiate import instantiate

log = logging.getLogger(__name__)

PREDICT_BATCH = 4096  # inference has no gradient state: one large batch is fastest


def seed_everything(seed: int) -> None:
    """Same seed, same machine, same backend → the same weights, batches and metrics."""
    if keras.backend.backend() == "tensorflow":
        keras.utils.set_random_seed(seed)
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        return
    # set_random_seed also seeds TensorFlow whenever it is installed, importing it: seconds and
    # hundreds of MB that a process on another backend never uses. Hidden for that call, Keras
    # takes TensorFlow as absent (what it seeds on this backend is unchanged).
    hide = "tensorflow" not in sys.modules
    if hide:
        # makes `import tensorflow` fail at once (the import system's rule; typeshed allows modules only)
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        keras.utils.set_random_seed(seed)
    finally:
        if hide:
            del sys.modules["tensorflow"]


def progress(verbose: int | str) -> tuple[int | str, list[keras.callbacks.Callback]]:
    """Keras' `verbose` for fit and our callbacks: `auto` is Keras' bar on a terminal, and one
    plain line per epoch when stdout is a file or pipe (the bar's ANSI codes and carriage
    returns would turn into one long garbled line per epoch there)."""
    if verbose == "auto" and not sys.stdout.isatty():
        return 0, [EpochLines()]
    return verbose, []


class EpochLines(keras.callbacks.Callback):
    """One log line per epoch: epoch, training loss, val_rmse, seconds."""

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss, val = logs.get("loss"), logs.get("val_rmse")
        log.info("epoch %d/%s  loss %s  val_rmse %s  %.1f s", epoch + 1, self.epochs,
                 "—" if loss is None else f"{float(loss):.4g}", "—" if val is None else f"{val:.4f}",
                 time.perf_counter() - self.started)


def optimizer_and_loss(
    optimizer_cfg: DictConfig, loss_cfg: DictConfig
) -> tuple[keras.optimizers.Optimizer, keras.losses.Loss]:
    """Keras optimizer and loss instantiated from their config groups (`_target_` + arguments)."""
    try:
        return instantiate(optimizer_cfg), instantiate(loss_cfg)
    except InstantiationException as error:
        raise LstmlabError(f"cannot build the optimizer or loss: {first_line(error)}") from None


class ValRmse(keras.callbacks.Callback):
    """Validates each epoch with one forward pass over the val windows: adds `val_loss` (the
    training loss, scaled) and `val_rmse` (price units) to the logs, for early stopping, pruning
    and MLflow. Keras' own validation (`validation_data`) would be a second pass, in batches of 32."""

    def __init__(self, data: Dataset) -> None:
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        scaled = predict(self.model, self.data.val.x)
        loss = self.model.compute_loss(y=self.data.val.y, y_pred=scaled, training=False)
        predicted = self.data.to_price(scaled, self.data.val.previous)
        # sklearn refuses NaN/inf; a diverged model's val_rmse is inf (StopOnNonFinite stops it).
        finite = np.isfinite(predicted).all()
        rmse = metrics.rmse(self.data.val.actual, predicted) if finite else math.inf
        if logs is not None:
            logs["val_loss"] = float(keras.ops.convert_to_numpy(loss))
            logs["val_rmse"] = rmse


class EpochHooks(keras.callbacks.Callback):
    """Runs plain `(step, logs) -> stop?` hooks after each epoch (after val_rmse is known), at
    `epoch_step`. Every hook sees every epoch; `stopped` remembers that one asked to stop, and
    `last_step` is the step of the last epoch trained (the final metrics go one step later)."""

    def __init__(self, hooks: Iterable[EpochHook], fold: int = 1, epochs: int = 1) -> None:
        super().__init__()
        self.hooks = list(hooks)
        self.fold = fold
        self.epochs = epochs
        self.stopped = False
        self.last_step = epoch_step(fold, epochs, -1)  # no epoch yet: the step before the fold's first

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.last_step = epoch_step(self.fold, self.epochs, epoch)
        if any([hook(self.last_step, logs or {}) for hook in self.hooks]):  # every hook sees every epoch
            self.stopped = True
            self.model.stop_training = True


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops at the first NaN/inf batch loss and remembers where (Keras' TerminateOnNaN forgets)."""

    def __init__(self) -> None:
        super().__init__()
        self.diverged_at: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = self._epoch + 1
            self.model.stop_training = True


class StopOnRequest(keras.callbacks.Callback):
    """Raises a Ctrl-C or SIGTERM after the batch it came in (lstmlab.interrupts)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        interrupts.check()


@dataclass(frozen=True)
class Fit:
    history: dict[str, list[float]]
    epochs_run: int
    seconds: float


def fit(
    model: keras.Model,
    data: Dataset,
    cfg: DictConfig,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Fit:
    """Fit on the training part, validating on the val part; `callbacks` run after val_rmse is known."""
    guard = StopOnNonFinite()
    all_callbacks: list[keras.callbacks.Callback] = [StopOnRequest(), ValRmse(data), guard]
    if cfg.early_stopping.enabled:
        all_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_rmse",
                mode="min",
                patience=cfg.early_stopping.patience,
                min_delta=cfg.early_stopping.min_delta,
                restore_best_weights=cfg.early_stopping.restore_best_weights,
            )
        )
    verbose, printers = progress(cfg.verbose)
    all_callbacks.extend(callbacks)
    all_callbacks.extend(printers)  # last: they print what the callbacks above decided
    started = time.perf_counter()
    history = model.fit(
        data.train.x,
        data.train.y,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        shuffle=cfg.shuffle,
        verbose=verbose,
        callbacks=all_callbacks,
    )
    seconds = time.perf_counter() - started
    if guard.diverged_at is not None:
        raise LstmlabError(
            f"training diverged: the loss became NaN/inf in epoch {guard.diverged_at} "
            "(try a lower optimizer.learning_rate or another activation)"
        )
    return Fit(history=dict(history.history), epochs_run=len(history.epoch), seconds=seconds)


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Model outputs for `x`, PREDICT_BATCH windows per call of the compiled predict step.

    `predict_on_batch` skips the data pipeline `model.predict` builds on every call (about 45 ms
    on TensorFlow here, paid each epoch by the validation)."""
    chunks = [model.predict_on_batch(x[i : i + PREDICT_BATCH]) for i in range(0, len(x), PREDICT_BATCH)]
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
