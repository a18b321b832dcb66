"""`lstmlab compare` at scale (issue 19): a store of N finished runs, compared cold and cached.

Makes a SQLite store of N runs quickly, without training: each run is logged directly through
`MlflowClient` with the params of a real run (the composed `train` config, flattened as
`lstmlab train` logs it, with one learning rate and dropout per configuration), the tags and
final metrics a run has, and a `predictions.csv` of `--days` test days. Runs come in
configurations of `--seeds` seeds; configuration 0 is the baseline. The store is kept in
`--folder` and reused when it already holds the same setting.

Then `lstmlab compare` runs as a user runs it (a new process, in the store's folder), first with
an empty predictions cache (cold), then with the cache that run filled (cached), for `--rounds`
rounds. `--code LABEL=SRC` compares other source trees (e.g. the code before a change, unpacked
with `git archive`) on the same store, alternating within each round so the machine's drift
falls on every version alike:

    python benchmarks/compare_scale.py --runs 2000 --rounds 3
    git archive START_COMMIT | tar -x -C /tmp/before
    python benchmarks/compare_scale.py --runs 2000 --rounds 3 --code before=/tmp/before/src after=src
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TEST_DAYS = 503  # the S&P 500 holdout's test part
MARKER = "store.txt"  # the setting the store in a folder was made with


def run_params(overrides: list[str]) -> dict[str, str]:
    """The params `lstmlab train OVERRIDES` logs, without running it."""
    from hydra import compose, initialize_config_dir

    from lstmlab.commands.hydra_compat import VERSION_BASE
    from lstmlab.paths import config_dir
    from lstmlab.pipeline.params import run_params as flat

    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        return flat(compose(config_name="train", overrides=overrides))


def make_store(folder: Path, runs: int, seeds: int, days: int) -> None:
    """`runs` finished runs in `folder/mlflow.db` (configurations of `seeds` seeds each)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    setting = f"runs={runs} seeds={seeds} days={days}"
    if (folder / MARKER).exists() and (folder / MARKER).read_text() == setting:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("lstmlab", artifact_location=(folder / "mlruns").as_uri())
    base_params = run_params([])
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2017-01-03", periods=days, name="date")
    actual = 2300 + np.cumsum(rng.normal(0, 20, days))
    naive = np.r_[actual[0], actual[:-1]]
    naive_rmse = float(np.sqrt(np.mean((actual - naive) ** 2)))
    started = time.perf_counter()
    clock = 1_700_000_000_000
    with tempfile.TemporaryDirectory() as scratch:
        for k in range(runs // seeds):
            quality = 1.0 if k == 0 else 0.7 + rng.uniform(0, 1.5)  # error scale relative to the baseline
            params = {**base_params, "optimizer.learning_rate": "0.001" if k == 0 else f"{rng.uniform(1e-4, 1e-2):.6f}",
                      "model.dropout": "0.2" if k == 0 else f"{rng.uniform(0, 0.5):.4f}",
                      "tracking.variant": "baseline" if k == 0 else "grid"}
            for seed in range(1, seeds + 1):
                clock += 1000
                predicted = actual + quality * rng.normal(0, 25 + 10 * rng.uniform(), days)
                rmse = float(np.sqrt(np.mean((actual - predicted) ** 2)))
                run = client.create_run(experiment, start_time=clock, run_name=params["tracking.variant"], tags={
                    "variant": params["tracking.variant"], "baseline": str(k == 0).lower(),
                    "data_sha256": "8eb4b9ab" + "0" * 56, "keras_backend": "jax"})
                run_id = run.info.run_id
                metrics = {"val_rmse": rmse * rng.uniform(0.6, 0.9), "test_rmse": rmse,
                           "test_mae": rmse * 0.8, "test_mape": rmse / 30, "test_r2": 0.9,
                           "test_directional_accuracy": 0.5, "naive_test_rmse": naive_rmse,
                           "naive_test_mae": naive_rmse * 0.8, "test_skill": 1 - rmse / naive_rmse,
                           "train_seconds": 20.0, "epochs_run": 5.0}
                client.log_batch(run_id, metrics=[Metric(n, v, clock, 5) for n, v in metrics.items()],
                                 params=[Param(n, v) for n, v in {**params, "trainer.seed": str(seed)}.items()],
                                 tags=[RunTag("mlflow.source.type", "LOCAL")])
                table = pd.DataFrame({"actual": actual, "predicted": predicted, "naive": naive}, index=dates)
                table.to_csv(Path(scratch) / "predictions.csv")
                client.log_artifact(run_id, str(Path(scratch) / "predictions.csv"))
                client.set_terminated(run_id, end_time=clock + 500)
    (folder / MARKER).write_text(setting)
    print(f"made a store of {runs} runs in {time.perf_counter() - started:.0f} s: {folder}")


def time_compare(folder: Path, src: str | None, cache: Path) -> tuple[float, int]:
    """Wall time of one `lstmlab compare` in `folder` (code from `src`, or the installed one) and
    the lines it printed."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", "XDG_CACHE_HOME": str(cache)}
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve())
    code = "import sys; from lstmlab.cli import main; sys.exit(main(['compare']))"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"compare failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout.count("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per configuration (default 5)")
    parser.add_argument("--days", type=int, default=TEST_DAYS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "lstmlab-compare-scale",
                        help="where the store is made (and kept for the next call)")
    parser.add_argument("--code", nargs="*", default=[], metavar="LABEL=SRC",
                        help="source trees to compare (default: the installed lstmlab)")
    args = parser.parse_args()
    make_store(args.folder, args.runs, args.seeds, args.days)
    versions = dict(item.split("=", 1) for item in args.code) or {"installed": None}
    times: dict[tuple[str, str], list[float]] = {}
    lines: dict[str, int] = {}
    for round_ in range(args.rounds):
        for label, src in (versions.items() if round_ % 2 == 0 else reversed(versions.items())):
            with tempfile.TemporaryDirectory() as cache:
                for state in ("cold", "cached"):
                    wall, lines[label] = time_compare(args.folder, src, Path(cache))
                    times.setdefault((label, state), []).append(wall)
                    print(f"round {round_ + 1} {label:>10} {state:>6}: {wall:6.2f} s", flush=True)
    load = os.getloadavg()[0]
    print(f"\n{args.runs} runs ({args.runs // args.seeds} configurations × {args.seeds} seeds, {args.days} days), "
          f"median of {args.rounds} rounds, load average {load:.2f}")
    first = next(iter(versions))
    for label in versions:
        cells = []
        for state in ("cold", "cached"):
            median = statistics.median(times[(label, state)])
            ratio = statistics.median(a / b for a, b in zip(times[(label, state)], times[(first, state)]))
            cells.append(f"{state} {median:6.2f} s ({ratio:.2f} × {first})")
        print(f"{label:>10}: {'   '.join(cells)}   terminal lines {lines[label]}")


if __name__ == "__main__":
    main()
