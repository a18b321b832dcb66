"""What every benchmark here shares: how to start `lstmlab` as a child process in a store of its
own, and the options that choose the data, backend, rounds and output."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
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


def run_logged(command: list[str], folder: Path, log_name: str, *, one_core_per_worker: bool = False) -> float:
    """Run `command` in `folder` with `child_env`, output to `folder/log_name`; its wall time.
    `one_core_per_worker`: the command on the first core, each launcher worker on a core of its
    own (see CorePinner). A failed command ends the benchmark with the log's tail."""
    log = folder / log_name
    started = time.time()
    with open(log, "w") as out:
        first_core = min(os.sched_getaffinity(0))
        process = subprocess.Popen(command, env=child_env(folder), cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, {first_core})) if one_core_per_worker
                                   else None)
        pinner = CorePinner(process.pid) if one_core_per_worker else None
        returncode = process.wait()
        if pinner:
            pinner.stop()
    wall = time.time() - started
    if returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({returncode}):\n{tail}")
    return wall


class CorePinner:
    """Gives each launcher worker (a loky process under `root`) a core of its own, every thread
    of it, as a GPU each would: Keras on JAX otherwise spreads a lone job's ops over every core,
    so a worker left idle by a batch's slowest trial lends its core to that trial and the cost of
    idle workers does not show on a shared CPU. `taskset` cannot do it: the workers start later,
    inside the command. Linux only (/proc, sched_setaffinity)."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root, self.interval = root, interval
        self.cores = sorted(os.sched_getaffinity(0))
        self.workers: dict[int, int] = {}  # pid -> its core
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def _watch(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self._pin_workers()
            except OSError:  # a process or thread ended while being read: the next scan sees the rest
                pass

    def _pin_workers(self) -> None:
        workers = [pid for pid in _descendants(self.root) if _is_loky_worker(pid)]
        self.workers = {pid: core for pid, core in self.workers.items() if pid in workers}
        for pid in workers:
            if pid not in self.workers:
                taken = set(self.workers.values())
                free = [core for core in self.cores if core not in taken] or self.cores
                self.workers[pid] = free[0]
            # every scan: threads started since the last one inherit the mask, unless started
            # between the listing and the setting; setting it again is cheap
            for tid in os.listdir(f"/proc/{pid}/task"):
                if os.sched_getaffinity(int(tid)) != {self.workers[pid]}:
                    os.sched_setaffinity(int(tid), {self.workers[pid]})


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # after "pid (comm) state": ppid
            children.setdefault(parent, []).append(int(entry))
    found, queue = [], [root]
    while queue:
        below = children.get(queue.pop(), [])
        found.extend(below)
        queue.extend(below)
    return found


def _is_loky_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"loky" in command and b"resource_tracker" not in command


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="jax", choices=("tensorflow", "jax"))
    parser.add_argument("--data", default="sp500", choices=("sp500", "synthetic"))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="more Hydra overrides for every command")
    parser.add_argument("--json", type=Path, help="also write the figures here")


def write_json(args: argparse.Namespace, **figures: object) -> None:
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **figures}, indent=1))
