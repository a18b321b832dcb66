"""A/A calibration: does the verdict's 95 % interval hold the truth 95 % of the time, and how often
does the verdict call one configuration different from itself?

Reads the finished runs of ONE configuration per target (20 seeds or more each; by default the
A/A export in evidence/aa-3-epochs: the baseline on S&P 500, holdout, 3 epochs, JAX, seeds 1-20,
price levels and log returns) and draws random disjoint splits of them into two pseudo-groups
(3 vs 3, 5 vs 5, 10 vs 10, 3 vs 8). Two groups of one configuration differ by nothing, so an
interval that excludes 0 is an error, and so is a verdict of better or worse. Then simulated pools
(seeds' log test RMSE normal, with each target's own spread) give the same rates on independent
groups, and a planted effect of the printed `mde` shows the power the report claims.

Runs with the lstmlab on the path. "Before" is the previous release's verdict (Welch on test RMSE
and a two-level bootstrap interval, both), measured by running this script against that source:

    git archive e35e33a~1 src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src python benchmarks/aa_calibration.py        # before
    python benchmarks/aa_calibration.py                                     # now

The splits are drawn from a fixed seed, so both see the same splits.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ALPHA = 0.05
SIZES = ((3, 3), (5, 5), (10, 10), (3, 8))
TARGETS = ("none", "log_return")


def runs_of(store: str, experiment: str) -> dict[str, dict[str, float]]:
    """Per target: run id → test RMSE, of the experiment's finished runs (one configuration each)."""
    import mlflow

    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="attributes.status = 'FINISHED'")
    found = {}
    for target in TARGETS:
        chosen = runs[runs["params.data.target_transform"] == target]
        found[target] = dict(zip(chosen["run_id"], chosen["metrics.test_rmse"].astype(float)))
    return found


class Verdict:
    """The verdict of whichever lstmlab is on the path, on two pseudo-groups of run ids."""

    def __init__(self, rmse: dict[str, float]) -> None:
        self.rmse = rmse
        try:
            from lstmlab.comparison.seeds import seed_effect  # now
        except ImportError:
            seed_effect = None
        self.now = seed_effect
        if self.now is None:  # before: the two-level interval needs the runs' daily losses
            from lstmlab.comparison.effect import DayDraws
            from lstmlab.comparison.predictions import daily_losses, read_all

            with tempfile.TemporaryDirectory() as cache:
                self.losses = daily_losses(read_all(rmse, Path(cache)))[0].dropna()
            self.draws = DayDraws(len(self.losses))

    def judge(self, first: list[str], second: list[str]) -> tuple[bool, bool]:
        """(the interval excludes 0, the verdict is better or worse)."""
        if self.now is not None:
            effect = self.now([self.rmse[i] for i in first], [self.rmse[i] for i in second])
            excludes = not effect.low <= 0 <= effect.high
            return excludes, effect.p_value < ALPHA  # one comparison: Holm changes nothing
        from lstmlab.comparison.effect import effect as two_level
        from lstmlab.comparison.seeds import welch
        from lstmlab.comparison.verdict import verdict

        interval = two_level(self.losses[first].to_numpy(), self.losses[second].to_numpy(), self.draws)
        test = welch([self.rmse[i] for i in first], [self.rmse[i] for i in second])
        decided = verdict(test.statistic, test.p_value, interval.low, interval.high, ALPHA)
        return not interval.low <= 0 <= interval.high, decided in ("better", "worse")


def real_splits(rmse: dict[str, float], sizes: tuple[int, int], count: int, seed: int) -> tuple[float, float, int]:
    """Rates over `count` random disjoint splits: interval excludes 0, verdict errs."""
    ids = sorted(rmse)
    rng = np.random.default_rng(seed)
    verdict = Verdict(rmse)
    excluded = erred = 0
    for _ in range(count):
        drawn = rng.permutation(ids)
        first, second = list(drawn[: sizes[0]]), list(drawn[sizes[0]: sizes[0] + sizes[1]])
        excludes, errs = verdict.judge(first, second)
        excluded += excludes
        erred += errs
    return excluded / count, erred / count, count


def simulated(sd: float, sizes: tuple[int, int], count: int, seed: int) -> tuple[float, float] | None:
    """Independent A/A pools with log test RMSE ~ N(0, sd): interval excludes 0, verdict errs."""
    try:
        from lstmlab.comparison.seeds import seed_effect
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    excluded = erred = 0
    for _ in range(count):
        effect = seed_effect(np.exp(rng.normal(0, sd, sizes[0])), np.exp(rng.normal(0, sd, sizes[1])))
        excluded += not effect.low <= 0 <= effect.high
        erred += effect.p_value < ALPHA
    return excluded / count, erred / count


def pool_spread(seeds: int, sizes: tuple[int, int], pools: int, splits: int, seed: int) -> tuple[float, float, float] | None:
    """One pool of `seeds` seeds gives its own split rate: across simulated normal pools, the 5th,
    50th and 95th percentile of the rate at which random splits of one pool are called different."""
    try:
        from lstmlab.comparison.seeds import seed_effect
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(pools):
        pool = np.exp(rng.normal(0, 1, seeds))
        erred = 0
        for _ in range(splits):
            drawn = rng.permutation(pool)
            erred += seed_effect(drawn[: sizes[0]], drawn[sizes[0]: sum(sizes)]).p_value < ALPHA
        rates.append(erred / splits)
    low, middle, high = np.percentile(rates, [5, 50, 95])
    return float(low), float(middle), float(high)


def planted(sd: float, n: int, count: int, seed: int) -> tuple[float, float] | None:
    """The mde printed for n vs n seeds of spread `sd`, and how often an effect that size is found."""
    try:
        from lstmlab.comparison.power import mde
        from lstmlab.comparison.seeds import seed_effect
    except ImportError:
        return None
    size = mde(sd, n, n, ALPHA)
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(count):
        effect = seed_effect(np.exp(rng.normal(math.log1p(size), sd, n)), np.exp(rng.normal(0, sd, n)))
        found += effect.p_value < ALPHA and effect.change > 0
    return size, found / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evidence", default="evidence/aa-3-epochs", help="an evidence folder (lstmlab evidence)")
    parser.add_argument("--store", help="an MLflow store URI instead of --evidence")
    parser.add_argument("--experiment", default="aa-3-epochs")
    parser.add_argument("--splits", type=int, default=2000, help="random splits per size")
    parser.add_argument("--pools", type=int, default=4000, help="simulated pools per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = args.store
        if store is None:  # the evidence loaded into a store of its own, as `lstmlab evidence table` does
            import subprocess

            store = f"sqlite:///{folder}/mlflow.db"
            subprocess.run([sys.executable, "-m", "lstmlab.cli", "evidence", "load", str(Path(args.evidence).resolve())],
                           check=True, env={**os.environ, "MLFLOW_TRACKING_URI": store}, cwd=folder)
        targets = runs_of(store, args.experiment)
        print("| target | seeds | sd of log test RMSE | split | interval excludes 0 | verdict better/worse |")
        print("|---|---|---|---|---|---|")
        spreads = {}
        for target, rmse in targets.items():
            logs = np.log(list(rmse.values()))
            spreads[target] = float(np.std(logs, ddof=1))
            for sizes in SIZES:
                if sum(sizes) > len(rmse):
                    continue
                excluded, erred, count = real_splits(rmse, sizes, args.splits, seed=sum(sizes))
                print(f"| {target} | {len(rmse)} | {spreads[target]:.3f} | {sizes[0]} v {sizes[1]} ({count} random "
                      f"splits) | {excluded:.1%} | {erred:.1%} |")
        for target, sd in spreads.items():
            for sizes in SIZES:
                rates = simulated(sd, sizes, args.pools, seed=sum(sizes))
                if rates is not None:
                    print(f"| simulated, sd {sd:.3f} ({target}) | — | {sd:.3f} | {sizes[0]} v {sizes[1]} ({args.pools} "
                          f"pools) | {rates[0]:.1%} | {rates[1]:.1%} |")
        print("\n| one pool of 20 simulated seeds, random splits | 5th percentile | median | 95th percentile |")
        print("|---|---|---|---|")
        for sizes in SIZES[:3]:
            spread = pool_spread(20, sizes, pools=200, splits=500, seed=7)
            if spread is not None:
                print(f"| {sizes[0]} v {sizes[1]}: verdict better/worse | {spread[0]:.1%} | {spread[1]:.1%} | {spread[2]:.1%} |")
        print("\n| target | sd of log test RMSE | seeds a side | mde (80 % power, alpha 0.05) | found when planted |")
        print("|---|---|---|---|---|")
        for target, sd in spreads.items():
            for n in (3, 5, 10):
                result = planted(sd, n, args.pools, seed=n)
                if result is not None:
                    print(f"| {target} | {sd:.3f} | {n} | {result[0]:.1%} | {result[1]:.1%} |")


if __name__ == "__main__":
    main()
