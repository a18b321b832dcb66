"""What the cores buy: the same multirun or sweep one job at a time and N jobs at a time.

Runs one command twice as separate processes (order alternating between rounds): with Hydra's
basic launcher (sequential; a sweep with hydra.sweeper.n_jobs=1) and with
`hydra/launcher=parallel hydra.launcher.n_jobs=N` (a sweep then asks N trials at a time). Each
command gets its own MLflow store, Optuna storage and a cold JAX compilation cache in a temp
folder. Prints wall times, their ratio in each round, the runs/trials each left, and the load.

    python benchmarks/parallel_jobs.py multirun --epochs 2        # variant=glob(*) x 2 seeds
    python benchmarks/parallel_jobs.py sweep --trials 20 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from pathlib import Path

from bench_common import add_common_options, lstmlab_command, run_logged, write_json


def job_args(args) -> list[str]:
    common = [f"data={args.data}", f"trainer.epochs={args.epochs}", f"trainer.backend={args.backend}",
              "trainer.verbose=0", *args.override]
    if args.what == "multirun":
        return ["variant=glob(*)", f"trainer.seed={','.join(str(s) for s in range(1, args.seeds + 1))}", *common]
    return [f"hparams_search={args.space}", f"hydra.sweeper.n_trials={args.trials}",
            f"hydra.sweeper.seed={args.seed}", "hydra.sweeper.storage=sqlite:///optuna.db", *common]


def run_once(args, parallel: bool, folder: Path) -> dict:
    folder.mkdir(parents=True)
    launcher = (["hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"] if parallel
                else ["hydra.sweeper.n_jobs=1"] if args.what == "sweep" else [])
    load = os.getloadavg()[0]
    wall = run_logged([*lstmlab_command(), "train", "-m", *job_args(args), *launcher], folder, "command.log")
    with sqlite3.connect(folder / "mlflow.db") as db:
        states = dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        # time inside fit per run: tells training slowed by sharing cores from overhead around it
        fit = db.execute("SELECT AVG(value) FROM latest_metrics WHERE key = 'train_seconds'").fetchone()[0]
    result = {"parallel": parallel, "wall": wall, "load_before": load, "load_after": os.getloadavg()[0],
              "runs": states, "fit_seconds_per_run": fit}
    if args.what == "sweep":  # asked in batches, trials differ from the sequential ones: so may the best
        result["best_val_rmse"] = best_value(folder / "optuna.db")
    return result


def best_value(storage: Path) -> float | None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{storage}")
    return summary.best_trial.value if summary.best_trial else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("multirun", "sweep"))
    parser.add_argument("--jobs", type=int, default=2, help="hydra.launcher.n_jobs of the parallel command")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2, help="multirun: trainer.seed=1..SEEDS")
    parser.add_argument("--trials", type=int, default=20, help="sweep: n_trials")
    parser.add_argument("--space", default="variants")
    parser.add_argument("--seed", type=int, default=42, help="sweep: hydra.sweeper.seed")
    add_common_options(parser)
    args = parser.parse_args()

    rounds = []
    print(f"{args.what}: {' '.join(job_args(args))}; {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="lstmlab-parallel-bench-") as tmp:
        for round_no in range(args.rounds):
            order = [False, True] if round_no % 2 == 0 else [True, False]
            result = {}
            for parallel in order:
                one = run_once(args, parallel, Path(tmp) / f"{round_no}-{int(parallel)}")
                result["parallel" if parallel else "sequential"] = one
                best = one.get("best_val_rmse")
                print(f"  round {round_no + 1} {'n_jobs=' + str(args.jobs) if parallel else 'sequential':11} "
                      f"wall {one['wall']:7.1f} s  runs {one['runs']}  "
                      f"fit/run {one['fit_seconds_per_run'] or 0:.2f} s  load {one['load_before']:.2f} → "
                      f"{one['load_after']:.2f}" + ("" if best is None else f"  best val_rmse {best:.4g}"), flush=True)
            ratio = result["parallel"]["wall"] / result["sequential"]["wall"]
            print(f"  round {round_no + 1} ratio n_jobs={args.jobs} / sequential: {ratio:.2f}", flush=True)
            rounds.append({**result, "ratio": ratio})
    write_json(args, rounds=rounds)


if __name__ == "__main__":
    main()
