"""What opening a store costs a command: the orphan check (issue 10) on stores of growing size.

Fills a fresh SQLite store with N finished runs (and a few RUNNING runs of live and gone
processes), then times `close_orphans` (one experiments search and one search of this host's
RUNNING runs) and the whole `open_store` of a new process-like state.

    python benchmarks/store_checks.py --runs 0 1000 5000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import mlflow

from lstmlab.tracking import open as opening
from lstmlab.tracking.orphans import close_orphans, owner_tags


def fill(client: mlflow.MlflowClient, n_runs: int) -> None:
    experiment = client.create_experiment("bench")
    tags = owner_tags()
    for i in range(n_runs):
        run = client.create_run(experiment, tags={**tags, "lstmlab.pid": "999999"}, run_name=f"r{i}")
        client.set_terminated(run.info.run_id)
    for _ in range(3):  # still running, in this process: checked and kept
        client.create_run(experiment, tags=tags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[0, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for n_runs in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            client = mlflow.MlflowClient(uri)
            fill(client, n_runs)
            orphan, whole = [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                close_orphans(client)
                orphan.append(time.perf_counter() - start)
                opening._opened.clear()  # as a new command would find it
                start = time.perf_counter()
                opening.open_store(uri)
                whole.append(time.perf_counter() - start)
            print(f"{n_runs:>6} finished runs: orphan check {statistics.median(orphan) * 1000:.1f} ms, "
                  f"open_store {statistics.median(whole) * 1000:.1f} ms (median of {args.rounds}, pid {os.getpid()})")


if __name__ == "__main__":
    main()
