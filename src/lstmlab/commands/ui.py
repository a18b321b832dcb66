"""`lstmlab ui [MLFLOW UI OPTIONS]`: `mlflow ui` on the store `lstmlab train` writes to.

That store is $MLFLOW_TRACKING_URI when set, else MLflow's default in the working directory
(sqlite:///mlflow.db, artifacts in mlruns/). Binds 127.0.0.1 unless `--host` says otherwise;
every other option goes to `mlflow ui` unchanged (`lstmlab ui --port 5001`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from lstmlab.errors import LstmlabError
from lstmlab.secrets import mask
from lstmlab.tracking.open import use_current_store

REMOTE_SCHEMES = ("http://", "https://", "databricks")
DEFAULT_HOST = "127.0.0.1"


def _given(args: list[str], *names: str) -> bool:
    return any(arg == name or arg.startswith(f"{name}=") for arg in args for name in names)


def command(args: list[str]) -> list[str]:
    """The `mlflow ui` command line for the project's store, with the user's options last."""
    configured = os.environ.get("MLFLOW_TRACKING_URI") or ""
    if configured.startswith(REMOTE_SCHEMES):  # said before opening it (which asks the server)
        raise LstmlabError(
            f"MLFLOW_TRACKING_URI is a tracking server ({configured}): open it in a browser; "
            "lstmlab ui serves a local store"
        )
    store = use_current_store()
    line = [sys.executable, "-m", "mlflow", "ui"]
    if not _given(args, "--backend-store-uri"):
        line += ["--backend-store-uri", store]
    if not _given(args, "--host", "-h"):
        line += ["--host", DEFAULT_HOST]
    return line + list(args)


def main(args: list[str]) -> int:
    line = command(args)
    print(mask(f"lstmlab ui: {' '.join(line[1:])}  (Ctrl-C stops it)"), flush=True)
    # Its own process group, so that one signal reaches the server and the workers it starts.
    server = subprocess.Popen(line, start_new_session=True)
    stopped: list[int] = []

    def forward(signum: int, frame: object) -> None:
        """Ctrl-C or SIGTERM to us: the same to the server's group; we wait for it to end."""
        stopped.append(signum)
        try:
            os.killpg(server.pid, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = server.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopped else code  # stopped by the user: a normal end
