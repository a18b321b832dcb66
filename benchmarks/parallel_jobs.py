"""What the cores buy: the same multirun or sweep one job at a time and N jobs at a time.

Runs one command as separate processes, in an order that rotates between rounds: with Hydra's
basic launcher (`sequential`; a sweep with hydra.sweeper.n_jobs=1) and with
`hydra/launcher=parallel hydra.launcher.n_jobs=N`. A sweep runs on N workers twice: `async`
(the default: the next trial starts as soon as one ends) and `batches`
(hydra.sweeper.async_trials=false: N trials at a time, each batch awaited whole). Each command
gets its own MLflow store, Optuna storage and a cold JAX compilation cache in a temp folder.
Prints wall times, their ratios to sequential (and async's to batches) in each round, the
runs/trials each left, the sweep's busy share (trials' run time / (N x wall)) and the load.
`--one-core-per-worker` gives each worker a core of its own (sequential: one core), as workers
that own a GPU each: on a shared CPU a job left alone uses every core, which hides idle workers.

    python benchmarks/parallel_jobs.py multirun --epochs 2        # variant=glob(*) x 2 seeds
    python benchmarks/parallel_jobs.py sweep --trials 20 --epochs 10 --rounds 2
    python benchmarks/parallel_jobs.py sweep --trials 20 --epochs-choice 2,20 --modes async batches
    python benchmarks/parallel_jobs.py sweep --trials 20 --epochs-choice 2,20 --one-core-per-worker
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import tempfile
from pathlib import Path

from bench_common import add_common_options, lstmlab_command, run_logged, write_json

MODES = {"multirun": ("sequential", "parallel"), "sweep": ("sequential", "async", "batches")}
BUSY_SHARE = re.compile(r"busy share (\d+\.\d+)")


def job_args(args) -> list[str]:
    # unequal trials: epochs become a dimension of the space (e.g. choice(2,20))
    epochs = f"trainer.epochs=choice({args.epochs_choice})" if args.epochs_choice else f"trainer.epochs={args.epochs}"
    common = [f"data={args.data}", epochs, f"trainer.backend={args.backend}", "trainer.verbose=0", *args.override]
    if args.what == "multirun":
        return ["variant=glob(*)", f"trainer.seed={','.join(str(s) for s in range(1, args.seeds + 1))}", *common]
    return [f"hparams_search={args.space}", f"hydra.sweeper.n_trials={args.trials}",
            f"hydra.sweeper.seed={args.seed}", "hydra.sweeper.storage=sqlite:///optuna.db", *common]


def run_once(args, mode: str, folder: Path) -> dict:
    folder.mkdir(parents=True)
    launcher = (["hydra.sweeper.n_jobs=1"] if args.what == "sweep" else []) if mode == "sequential" else [
        "hydra/launcher=parallel", f"hydra.launcher.n_jobs={args.jobs}"]
    if mode == "batches":
        launcher.append("hydra.sweeper.async_trials=false")
    load = os.getloadavg()[0]
    wall = run_logged([*lstmlab_command(), "train", "-m", *job_args(args), *launcher], folder, "command.log",
                      one_core_per_worker=args.one_core_per_worker)
    with sqlite3.connect(folder / "mlflow.db") as db:
        states = dict(db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
        # time inside fit per run: tells training slowed by sharing cores from overhead around it
        fit = db.execute("SELECT AVG(value) FROM latest_metrics WHERE key = 'train_seconds'").fetchone()[0]
    result = {"mode": mode, "wall": wall, "load_before": load, "load_after": os.getloadavg()[0],
              "runs": states, "fit_seconds_per_run": fit}
    if args.what == "sweep":  # asked in batches, trials differ from the sequential ones: so may the best
        result["best_val_rmse"] = best_value(folder / "optuna.db")
        busy = BUSY_SHARE.findall((folder / "command.log").read_text(errors="replace"))
        result["busy_share"] = float(busy[-1]) if busy else None
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
    parser.add_argument("--epochs-choice", help="sweep: unequal trials, e.g. 2,20 (trainer.epochs=choice(2,20))")
    parser.add_argument("--modes", nargs="+", help="which commands (multirun: sequential parallel; sweep: "
                        "sequential async batches, the default all)")
    parser.add_argument("--one-core-per-worker", action="store_true",
                        help="sequential on one core, each launcher worker on its own core (as a GPU each): "
                        "what workers that own their device gain from not waiting")
    add_common_options(parser)
    args = parser.parse_args()
    modes = args.modes or list(MODES[args.what])
    if not set(modes) <= set(MODES[args.what]):
        parser.error(f"--modes for {args.what}: {' '.join(MODES[args.what])}")

    rounds = []
    cores = "one core per worker" if args.one_core_per_worker else "cores shared"
    print(f"{args.what}: {' '.join(job_args(args))}; {os.cpu_count()} CPUs, {cores}", flush=True)
    with tempfile.TemporaryDirectory(prefix="lstmlab-parallel-bench-") as tmp:
        for round_no in range(args.rounds):
            shift = round_no % len(modes)  # each mode first in turn
            result = {}
            for mode in modes[shift:] + modes[:shift]:
                one = run_once(args, mode, Path(tmp) / f"{round_no}-{mode}")
                result[mode] = one
                best, busy = one.get("best_val_rmse"), one.get("busy_share")
                name = mode if mode == "sequential" else f"{mode} n_jobs={args.jobs}"
                print(f"  round {round_no + 1} {name:18} wall {one['wall']:7.1f} s  runs {one['runs']}  "
                      f"fit/run {one['fit_seconds_per_run'] or 0:.2f} s  load {one['load_before']:.2f} → "
                      f"{one['load_after']:.2f}" + ("" if best is None else f"  best val_rmse {best:.4g}")
                      + ("" if busy is None else f"  busy share {busy:.2f}"), flush=True)
            ratios = {f"{a}/{b}": result[a]["wall"] / result[b]["wall"]
                      for a, b in (("parallel", "sequential"), ("async", "sequential"), ("batches", "sequential"),
                                   ("async", "batches")) if a in result and b in result}
            print(f"  round {round_no + 1} ratios " + "  ".join(f"{k} {v:.2f}" for k, v in ratios.items()), flush=True)
            rounds.append({**result, "ratios": ratios})
    write_json(args, rounds=rounds)


if __name__ == "__main__":
    main()
