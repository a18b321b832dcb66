"""What pruning buys a sweep: the same seeded Optuna study with a pruner and without one.

Runs `lstmlab train -m hparams_search=SPACE` twice, as separate processes (in alternating order
when --rounds > 1): once with each `--pruner` (default `median`, the sweeper's default: it judges
from the 4th epoch once 3 trials have finished) and once with `hydra.sweeper.pruner=none`. Same
sampler, seed, trials, epochs and data. Prints for both: wall time of the process, epochs trained
(summed over trials, from the per-epoch values reported to Optuna), trials complete and pruned,
the best val_rmse, and when each sweep first came within 2 % of the unpruned sweep's best (time
since its process started, and as a share of the unpruned sweep's wall time).

Each sweep has its own Optuna storage, MLflow store and JAX compilation cache in a temp folder,
so both start empty and cold (trials of a shape seen before in the same sweep load their
compiled programs, as in any sweep).

    python benchmarks/sweep_pruning.py --trials 16 --epochs 15 --backend jax
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench_common import add_common_options, lstmlab_command, run_logged, write_json

TOLERANCE = 0.02  # "reaches the unpruned best": within 2 %


def run_sweep(args, pruner: str, folder: Path) -> dict:
    """One sweep in a fresh store; its wall time and what its Optuna storage holds afterwards."""
    import optuna

    folder.mkdir(parents=True)
    storage = f"sqlite:///{folder / 'optuna.db'}"
    study_name = "bench"
    command = [
        *lstmlab_command(), "train", "-m", f"hparams_search={args.space}",
        f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.seed={args.seed}",
        f"hydra.sweeper.pruner={pruner}", f"hydra.sweeper.study_name={study_name}",
        f"hydra.sweeper.storage={storage}", f"data={args.data}", f"trainer.epochs={args.epochs}",
        f"trainer.backend={args.backend}", "trainer.verbose=0", *args.override,
    ]
    started = time.time()
    wall = run_logged(command, folder, "sweep.log")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    states = [t.state.name for t in trials]
    finished = sorted((t for t in trials if t.datetime_complete), key=lambda t: t.datetime_complete)
    best_so_far, progress = float("inf"), []  # (seconds since start, best val_rmse then)
    for trial in finished:
        if trial.state.name == "COMPLETE" and trial.value is not None and trial.value < best_so_far:
            best_so_far = trial.value
            progress.append((trial.datetime_complete.timestamp() - started, best_so_far))
    return {
        "pruner": pruner, "wall": wall,
        "epochs": sum(len(t.intermediate_values) for t in trials),
        "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"), "best": best_so_far, "progress": progress,
    }


def reached(result: dict, target: float) -> float | None:
    """Seconds until the sweep's best came within TOLERANCE of `target`; None if it never did."""
    for seconds, best in result["progress"]:
        if best <= target * (1 + TOLERANCE):
            return seconds
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="variants", help="hparams_search option (variants | wide)")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=42, help="hydra.sweeper.seed")
    parser.add_argument("--pruner", nargs="+", default=["median"],
                        help="the pruners set against none (hydra.sweeper.pruner values)")
    add_common_options(parser)
    args = parser.parse_args()

    names = [*args.pruner, "none"]
    results: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="lstmlab-sweep-bench-") as tmp:
        print(f"{args.trials} trials of {args.epochs} epochs, hparams_search={args.space}, "
              f"{args.data} on {args.backend}; load average {os.getloadavg()[0]:.2f} on "
              f"{os.cpu_count()} CPUs", flush=True)
        for round_no in range(args.rounds):
            order = names if round_no % 2 == 0 else names[::-1]  # alternate: drift hits all alike
            for index, pruner in enumerate(order):
                result = run_sweep(args, pruner, Path(tmp) / f"{index}-{round_no}")
                result["load"] = os.getloadavg()[0]
                results[pruner].append(result)
                print(f"  round {round_no + 1} pruner={pruner:40} wall {result['wall']:7.1f} s  "
                      f"epochs {result['epochs']:4}  complete {result['complete']:3}  "
                      f"pruned {result['pruned']:3}  best val_rmse {result['best']:.4f}  "
                      f"load {result['load']:.2f}", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}\n")

    for name in args.pruner:
        print(f"{'median of rounds':40}{'pruner=' + name[:40]:>44}{'pruner=none':>18}{'ratio':>8}")
        for key, label in (("wall", "wall time (s)"), ("epochs", "epochs trained"),
                           ("complete", "trials complete"), ("pruned", "trials pruned"),
                           ("best", "best val_rmse")):
            pruned = statistics.median(r[key] for r in results[name])
            unpruned = statistics.median(r[key] for r in results["none"])
            ratio = f"{pruned / unpruned:8.2f}" if unpruned else ""
            print(f"{label:40}{pruned:44.4g}{unpruned:18.4g}{ratio}")
        for pruned, unpruned in zip(results[name], results["none"]):
            target = unpruned["best"]
            for result in (pruned, unpruned):
                seconds = reached(result, target)
                when = (f"after {seconds:7.1f} s = {seconds / unpruned['wall']:.0%} of the unpruned "
                        f"sweep's wall time" if seconds is not None else "never")
                print(f"pruner={result['pruner'][:40]:40} within {TOLERANCE:.0%} of the unpruned best "
                      f"({target:.4f}): {when}")
        print()
    write_json(args, results=results)


if __name__ == "__main__":
    main()
