"""The console: what a user sees while a command runs, and what stays off it.

Library code logs with `logging.getLogger(__name__)`; the commands own the console. By default
it shows lstmlab's own records (a sweep's per-trial line, per-epoch progress) and every other
library's errors; the frameworks' INFO/WARNING chatter (MLflow, TensorFlow, absl, Python
warnings) goes only to the run's log file (Hydra's `<output dir>/train.log`). `-v`/`--debug`
(LSTMLAB_VERBOSE=1) lets everything through, TensorFlow's C++ log included.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from lstmlab.secrets import MaskFilter

VERBOSE_ENV = "LSTMLAB_VERBOSE"
# Loggers whose INFO records are for the user; "hydra" names a multirun's jobs (#0 : ...).
OWN = ("lstmlab", "hydra_plugins", "hydra", "__main__")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def quiet_environment() -> None:
    """Environment for the frameworks, set before they are imported (the user's own values win).

    TF_CPP_MIN_LOG_LEVEL=3 drops TensorFlow's C++ INFO/WARNING/ERROR lines after start-up; the
    ERROR ones it prints on a CPU machine are not errors for us ("failed call to cuInit", "NodeDef
    mentions attribute use_unbounded_threadpool"), and real failures still reach Python as
    exceptions. MLflow's own logging setup is turned off so its records flow through ours.
    """
    level = "0" if verbose() else "3"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


def is_own(record: logging.LogRecord) -> bool:
    return record.name.split(".", 1)[0] in OWN


class StdoutFilter(logging.Filter):
    """stdout: lstmlab's own INFO records (progress, sweep lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return is_own(record) and record.levelno < logging.WARNING


class StderrFilter(logging.Filter):
    """stderr: lstmlab's warnings and errors, other libraries' errors; everything when verbose."""

    def __init__(self) -> None:
        super().__init__()
        self.verbose = verbose()

    def filter(self, record: logging.LogRecord) -> bool:
        if is_own(record):
            return record.levelno >= logging.WARNING
        return self.verbose or record.levelno >= logging.ERROR


def setup() -> None:
    """Console handlers on the root logger, for commands that run outside Hydra's logging setup
    (Hydra's job logging, conf/hydra/job_logging/lstmlab.yaml, installs the same filters)."""
    quiet_environment()
    formatter = logging.Formatter("%(message)s")
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(StdoutFilter())
    err = logging.StreamHandler(sys.stderr)
    err.addFilter(StderrFilter())
    root = logging.getLogger()
    for handler in (out, err):
        handler.addFilter(MaskFilter())  # whatever reaches the console has its URLs masked
        handler.setFormatter(formatter)
    root.handlers = [out, err]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # warnings become py.warnings records: off the console by default


@contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file while the block runs; show it if the block fails.

    TensorFlow 2.21 writes a few lines from C++ static initializers while it is imported ("All
    log messages before absl::InitializeLog() is called...", oneDNN, "Could not find cuda
    drivers"): they are printed before absl's log level or TF_CPP_MIN_LOG_LEVEL are consulted, so
    no environment variable hides them. Only the import is wrapped, and a failed import replays
    what was written, so real errors stay visible. Verbose mode wraps nothing.
    """
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
