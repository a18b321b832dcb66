"""lstmlab's baseline against the seed's plain Keras script: the framework's cost, measured.

One invocation runs, as separate processes and in alternating order, the plain Keras reference
(`reference_keras.py`) and `lstmlab train` (the baseline) on the same data and epochs, for
several rounds, and prints the medians and the ratio lstmlab / reference of:

- wall time of the whole process, and its CPU time (user + system: less sensitive to a busy machine);
- time inside `fit` (lstmlab's logged `train_seconds`, the reference's own clock), the first
  epoch (graph tracing / JIT compilation) and a steady epoch (median of the later ones: from the
  reference's clock, and from the MLflow timestamps of lstmlab's per-epoch metrics);
- time outside `fit` (start-up and imports, data, evaluation, logging) = wall - fit;
- peak resident memory of the process (from the kernel's rusage of that child);
- both extrapolated to 50 epochs: fit(50) = fit(E) + (50 - E) × steady epoch, outside unchanged.

lstmlab writes to a throwaway MLflow store (sqlite in a temp folder), created before the first
round so that no round pays for creating its schema, as a user's second run would not. On JAX,
lstmlab keeps compiled programs in a cache (see src/lstmlab/runtime.py): by default a warm-up
run fills a throwaway one before the rounds (a user's second run); --jax-cache cold gives every
run an empty one (a first run).

    python benchmarks/baseline_vs_reference.py --epochs 5 --rounds 3 --backend tensorflow jax
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import lstmlab_command

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference_keras.py"
EXTRAPOLATE_TO = 50  # the seed's epochs


def run_child(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict:
    """Run one process; its wall time, CPU time and peak RSS (rusage of that child alone)."""
    with open(log, "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}); log {log}:\n{tail}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def steady_and_first(fit: float, epoch_seconds: list[float]) -> tuple[float, float]:
    """Median of the epochs after the first (compilation happens in the first), and the first."""
    later = epoch_seconds[1:]
    steady = statistics.median(later) if later else fit
    return steady, fit - steady * len(later)


def run_reference(args, env, work: Path, round_no: int) -> dict:
    command = [sys.executable, str(REFERENCE), "--epochs", str(args.epochs), "--data", args.data]
    env = {**env, "KERAS_BACKEND": args.reference_backend}
    result = run_child(command, env, work, work / f"reference-{round_no}.log")
    lines = (work / f"reference-{round_no}.log").read_text().strip().splitlines()
    report = json.loads(lines[-1])
    result["fit"] = report["fit_seconds"]
    result["epoch"], result["first_epoch"] = steady_and_first(report["fit_seconds"], report["epoch_seconds"])
    result["params"] = report["params"]
    return result


def run_lstmlab(args, backend: str, env, work: Path, round_no: int, store: str,
                epochs: int | None = None) -> dict:
    from mlflow import MlflowClient

    epochs = epochs or args.epochs

    if backend == "jax" and args.jax_cache == "cold":
        env = {**env, "JAX_COMPILATION_CACHE_DIR": str(work / f"jax-cache-{round_no}")}

    command = [
        *lstmlab_command(), "train", f"data={args.data}", f"trainer.epochs={epochs}",
        f"trainer.backend={backend}", "tracking.experiment=benchmark",
    ]
    env = {k: v for k, v in env.items() if k != "KERAS_BACKEND"}
    result = run_child(command, env, work, work / f"lstmlab-{backend}-{round_no}.log")
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("benchmark")
    run = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"],
                             max_results=1)[0]
    assert run.data.tags["keras_backend"] == backend, run.data.tags
    history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
    ends = [m.timestamp / 1000 for m in history]  # each epoch's end, as logged (ms resolution)
    fit = run.data.metrics["train_seconds"]
    result["fit"] = fit
    result["epoch"], result["first_epoch"] = steady_and_first(
        fit, [fit - (ends[-1] - ends[0])] + [b - a for a, b in zip(ends, ends[1:])]
    )
    return result


def derived(result: dict, epochs: int) -> dict:
    outside = result["wall"] - result["fit"]
    fit_50 = result["fit"] + (EXTRAPOLATE_TO - epochs) * result["epoch"]
    return {**result, "outside": outside, "wall_50": outside + fit_50,
            "outside_share_50": outside / (outside + fit_50)}


ROWS = [  # key, label, format
    ("wall", "wall time, whole process (s)", "{:8.2f}"),
    ("cpu", "CPU time, user + system (s)", "{:8.2f}"),
    ("fit", "inside fit (s)", "{:8.2f}"),
    ("first_epoch", "first epoch, with compilation (s)", "{:8.2f}"),
    ("epoch", "steady epoch (s)", "{:8.3f}"),
    ("outside", "outside fit (s)", "{:8.2f}"),
    ("rss_mib", "peak RSS (MiB)", "{:8.0f}"),
    ("wall_50", f"wall at {EXTRAPOLATE_TO} epochs, extrapolated (s)", "{:8.1f}"),
    ("outside_share_50", f"outside fit at {EXTRAPOLATE_TO} epochs (share)", "{:8.1%}"),
]


def report(results: dict[str, list[dict]]) -> str:
    names = list(results)
    medians = {n: {k: statistics.median(r[k] for r in results[n]) for k, _, _ in ROWS} for n in names}
    # Ratios are taken round by round (each lstmlab process against the reference of its round),
    # then the median: drift in the machine's load cancels within a round.
    ratios = {
        n: {k: statistics.median(r[k] / ref[k] for r, ref in zip(results[n], results["reference"]))
            for k, _, _ in ROWS}
        for n in names[1:]
    }
    header = f"{'median of rounds':42}" + "".join(f"{n:>22}" for n in names[:1])
    header += "".join(f"{n:>22}{'ratio':>8}" for n in names[1:])
    lines = [header]
    for key, label, fmt in ROWS:
        line = f"{label:42}{fmt.format(medians['reference'][key]):>22}"
        for n in names[1:]:
            line += f"{fmt.format(medians[n][key]):>22}{ratios[n][key]:8.2f}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", nargs="+", default=["tensorflow"], choices=("tensorflow", "jax"),
                        help="lstmlab's trainer.backend; several run side by side in each round")
    parser.add_argument("--reference-backend", default="tensorflow", choices=("tensorflow", "jax"),
                        help="KERAS_BACKEND for the plain script (the seed's: tensorflow)")
    parser.add_argument("--data", default="sp500", choices=("sp500", "synthetic"))
    parser.add_argument("--jax-cache", choices=("warm", "cold"), default="warm",
                        help="lstmlab on JAX: its compilation cache filled by a warm-up run "
                             "before the rounds (a user's second run), or empty for each run")
    parser.add_argument("--json", type=Path, help="also write every round's figures here")
    args = parser.parse_args()

    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="lstmlab-bench-") as tmp:
        work = Path(tmp)
        store = f"sqlite:///{work / 'mlflow.db'}"
        MlflowClient(store).search_experiments()  # creates the store's schema before round 1
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "2",
               "JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache")}
        if "jax" in args.backend and args.jax_cache == "warm":
            print("warming JAX's compilation cache with one lstmlab run", flush=True)
            run_lstmlab(args, "jax", env, work, -1, store, epochs=1)
        names = ["reference", *(f"lstmlab[{b}]" for b in args.backend)]
        results: dict[str, list[dict]] = {n: [] for n in names}
        print(f"{args.rounds} rounds of {args.epochs} epochs on {args.data}; load average "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        for round_no in range(args.rounds):
            order = names[round_no % len(names):] + names[: round_no % len(names)]  # rotate
            for name in order:
                if name == "reference":
                    result = run_reference(args, env, work, round_no)
                else:
                    backend = name[len("lstmlab["):-1]
                    result = run_lstmlab(args, backend, env, work, round_no, store)
                results[name].append(derived(result, args.epochs))
                print(f"  round {round_no + 1} {name:22} wall {result['wall']:6.2f} s  "
                      f"fit {result['fit']:6.2f} s  epoch {result['epoch']:5.3f} s  "
                      f"RSS {result['rss_mib']:5.0f} MiB", flush=True)
        print(f"load average after: {os.getloadavg()[0]:.2f}\n")
        print(report(results))
        if args.json:
            args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                             "results": results}, indent=1))


if __name__ == "__main__":
    main()
