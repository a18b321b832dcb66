"""What every benchmark here shares: how to start `lstmlab` as a child process in a store of its
own, and the options that choose the data, backend, rounds and output."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def lstmlab_command() -> list[str]:
    """The venv's `lstmlab` script (as a user runs it), else the module."""
    script = Path(sys.executable).parent / "lstmlab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lstmlab.cli"]


def child_env(folder: Path) -> dict[str, str]:
    """The environment of a benchmarked command: its own MLflow store and a cold JAX compilation
    cache in `folder`, TensorFlow's start-up chatter off, the backend left to the command."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
           "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_COMPILATION_CACHE_DIR": str(folder / "jax-cache")}
    env.pop("KERAS_BACKEND", None)
    return env


def run_logged(command: list[str], folder: Path, log_name: str) -> float:
    """Run `command` in `folder` with `child_env`, output to `folder/log_name`; its wall time.
    A failed command ends the benchmark with the log's tail."""
    log = folder / log_name
    started = time.time()
    with open(log, "w") as out:
        status = subprocess.run(command, env=child_env(folder), cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    wall = time.time() - started
    if status.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({status.returncode}):\n{tail}")
    return wall


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="jax", choices=("tensorflow", "jax"))
    parser.add_argument("--data", default="sp500", choices=("sp500", "synthetic"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for every command")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def write_json(args: argparse.Namespace, **figures: object) -> None:
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **figures}, indent=1))
