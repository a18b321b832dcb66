"""`lstmlab evidence` on a campaign of full size: the export's size, and how long a fresh clone takes
to recompute the campaign's table (issue 27's goal: 55 runs in ≤ 60 s on 2 cores).

Makes a store like the one the campaign trains, without training: every variant × `--seeds` seeds,
walk-forward with `--folds` folds of `--epochs` epochs, each run logged through `MlflowClient` with
the params `lstmlab train variant=V` logs, the tags a run has, its per-epoch curves (train_loss,
val_loss, val_rmse at every epoch of every fold), its fold and final metrics, and a config.yaml,
scaler.json and predictions.csv (with `fold`) of `--days` test days. Then, as a user runs them
(new processes): `lstmlab evidence save` from that store, and in a folder of its own (a clone
elsewhere) `lstmlab evidence table` and `lstmlab evidence load`, `--rounds` times each:

    python benchmarks/evidence_table.py --seeds 5 --folds 3 --epochs 50 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_common import lstmlab_command

VARIANTS = ("baseline", "bidirectional", "third_layer", "unequal_units", "tanh", "leaky_relu", "sgd", "rmsprop",
            "adagrad", "mae", "huber")
EXPERIMENT = "campaign"
TEST_DAYS = 503


def composed(variant: str, folds: int, epochs: int):
    from hydra import compose, initialize_config_dir

    from lstmlab.commands.hydra_compat import VERSION_BASE
    from lstmlab.paths import config_dir

    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        return compose(config_name="train", overrides=[f"variant={variant}", "evaluation=walk_forward",
                                                       f"evaluation.folds={folds}", f"trainer.epochs={epochs}",
                                                       f"tracking.experiment={EXPERIMENT}"])


def make_store(folder: Path, seeds: int, folds: int, epochs: int, days: int) -> None:
    """Every variant × `seeds` runs in `folder/mlflow.db`, each with the records a trained run has."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param
    from omegaconf import OmegaConf

    from lstmlab.pipeline.params import run_config, run_params

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(folder / "mlruns").as_uri())
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2017-01-03", periods=days, name="date")
    actual = 2300 + np.cumsum(rng.normal(0, 20, days))
    naive = np.r_[actual[0], actual[:-1]]
    fold = np.repeat(np.arange(1, folds + 1), -(-days // folds))[:days]
    naive_rmse = float(np.sqrt(np.mean((actual - naive) ** 2)))
    scaler = json.dumps({"format": "lstmlab.scalers/1", "features": {"min_": [0.1] * 1, "scale_": [0.001]}}, indent=1)
    clock = 1_700_000_000_000
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for seed in range(1, seeds + 1):
            for k, variant in enumerate(VARIANTS):
                cfg = composed(variant, folds, epochs)
                cfg.trainer.seed = seed
                clock += 60_000
                predicted = actual + (1 + 0.05 * k) * rng.normal(0, 25, days)
                rmse = float(np.sqrt(np.mean((actual - predicted) ** 2)))
                run_id = client.create_run(experiment, start_time=clock, run_name=variant, tags={
                    "variant": variant, "baseline": str(variant == "baseline").lower(),
                    "data_sha256": "8eb4b9ab" + "0" * 56, "keras_backend": "jax", "mlflow.source.type": "LOCAL",
                    "mlflow.user": "someone", "mlflow.source.name": "lstmlab train", "lstmlab.host": "a-host",
                    "lstmlab.pid": "4242", "lstmlab.start": "123"}).info.run_id
                curves = [Metric(name, float(rng.uniform(0.001, 30)), clock + step, step)
                          for step in range(1, folds * epochs + 1) for name in ("train_loss", "val_loss", "val_rmse")]
                per_fold = [Metric(name, float(rng.uniform(10, 40)), clock, f)
                            for f in range(1, folds + 1) for name in ("fold_test_rmse", "fold_naive_test_rmse", "fold_val_rmse")]
                final = {"val_rmse": rmse * 0.8, "test_rmse": rmse, "test_mae": rmse * 0.8, "test_mape": rmse / 30,
                         "test_r2": 0.9, "test_directional_accuracy": 0.5, "naive_test_rmse": naive_rmse,
                         "naive_test_mae": naive_rmse * 0.8, "test_skill": 1 - rmse / naive_rmse,
                         "train_seconds": 300.0, "epochs_run": float(folds * epochs)}
                last = folds * epochs + 1
                client.log_batch(run_id, metrics=[*curves, *per_fold, *(Metric(n, v, clock, last) for n, v in final.items())],
                                 params=[Param(n, v) for n, v in run_params(cfg).items()])
                (scratch / "config.yaml").write_text(OmegaConf.to_yaml(run_config(cfg)))
                (scratch / "scaler.json").write_text(scaler)
                pd.DataFrame({"actual": actual, "predicted": predicted, "naive": naive, "fold": fold},
                             index=dates).to_csv(scratch / "predictions.csv")
                client.log_artifacts(run_id, str(scratch))
                client.set_terminated(run_id, end_time=clock + 50_000)


def timed(args: list[str], folder: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*lstmlab_command(), *args], cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"lstmlab {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--days", type=int, default=TEST_DAYS)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lstmlab-evidence-bench-") as root_name:
        root = Path(root_name)
        trained, clone = root / "trained", root / "clone"
        trained.mkdir()
        started = time.perf_counter()
        make_store(trained, args.seeds, args.folds, args.epochs, args.days)
        print(f"made a store of {len(VARIANTS) * args.seeds} runs in {time.perf_counter() - started:.0f} s", flush=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{trained / 'mlflow.db'}", "XDG_CACHE_HOME": str(root / "cache")}
        wall, said = timed(["evidence", "save", "evidence/campaign", "--experiment", EXPERIMENT], trained, env)
        print(f"save: {wall:.1f} s: {said.splitlines()[0]}", flush=True)
        times: dict[str, list[float]] = {"table": [], "load": []}
        for round_ in range(args.rounds):
            shutil.rmtree(clone, ignore_errors=True)
            shutil.copytree(trained / "evidence", clone / "evidence")
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{clone / 'mlflow.db'}",
                   "XDG_CACHE_HOME": str(clone / "cache")}
            for command in ("table", "load"):
                wall, said = timed(["evidence", command, "evidence/campaign"], clone, env)
                times[command].append(wall)
                print(f"round {round_ + 1} {command}: {wall:.1f} s", flush=True)
        size = sum(p.stat().st_size for p in (trained / "evidence").rglob("*") if p.is_file())
        print(f"\n{len(VARIANTS) * args.seeds} runs ({args.folds} folds × {args.epochs} epochs, {args.days} test days): "
              f"records {size / 1e6:.2f} MB; median of {args.rounds} rounds: table {statistics.median(times['table']):.1f} s, "
              f"load into a new store {statistics.median(times['load']):.1f} s; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
