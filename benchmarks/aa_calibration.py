"""A/A calibration: how often does a test call one configuration different from itself?

Reads N finished runs of ONE configuration (seeds 1..N) from a store, splits them into two
pseudo-groups in every disjoint way (k seeds against k other seeds), and counts how often each
test rejects "no difference" at 0.05. A test about configurations should reject in about 5 % of
the splits or fewer; the verdict (which needs two tests) in fewer still.

- DM (days): what `lstmlab compare` computed before the verdict was rebuilt: the Diebold–Mariano
  test (Newey–West variance with ⌊T^(1/3)⌋ lags, Harvey–Leybourne–Newbold correction, Student's
  t) on the difference of the two pseudo-groups' seed-averaged daily squared errors.
- days-only interval: the old effect interval, moving blocks of days only, excludes 0.
- old verdict: Welch on val_rmse (the old --metric default) and DM both below 0.05, same way.
- Welch (test RMSE): Welch's t-test across seeds of each run's test_rmse.
- two-level interval: seeds and day blocks resampled (comparison.effect), excludes 0.
- verdict: `lstmlab compare`'s verdict now (comparison.verdict): Welch and the two-level
  interval, both, the same way.

With one comparison per split, Holm's correction changes nothing. Made with (in a folder of its own):

    lstmlab train -m trainer.seed=1,2,3,4,5,6,7,8 trainer.epochs=5 trainer.backend=jax
    python benchmarks/aa_calibration.py --sizes 3 4      # MLFLOW_TRACKING_URI, or mlflow.db here
"""

from __future__ import annotations

import argparse
import math
from itertools import combinations

import mlflow
import numpy as np
from scipy import stats

from lstmlab.comparison.effect import DayDraws, effect
from lstmlab.comparison.predictions import Unusable, daily_losses, read_all
from lstmlab.comparison.seeds import welch
from lstmlab.comparison.verdict import verdict
from lstmlab.names import REPORT_TAG

ALPHA = 0.05


def diebold_mariano_p(d: np.ndarray) -> float:
    """The day test compare used before: DM on d with Newey–West (Bartlett, ⌊T^(1/3)⌋ lags), HLN, t(T−1)."""
    days = d.size
    lags = int(math.floor(days ** (1 / 3) + 1e-9))
    centred = d - d.mean()
    variance = centred @ centred / days
    for lag in range(1, lags + 1):
        variance += 2 * (1 - lag / (lags + 1)) * (centred[lag:] @ centred[:-lag]) / days
    statistic = d.mean() / math.sqrt(variance / days) * math.sqrt((days - 1) / days)
    return float(2 * stats.t.sf(abs(statistic), df=days - 1))


def splits(ids: list[str], size: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every unordered pair of disjoint `size`-subsets of `ids` (8 runs: 280 for 3, 35 for 4)."""
    pairs = []
    for first in combinations(ids, size):
        rest = [i for i in ids if i not in first]
        pairs += [(first, second) for second in combinations(rest, size) if first < second]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="lstmlab")
    parser.add_argument("--filter", default="", help="an MLflow filter string narrowing the runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 4], help="seeds per pseudo-group")
    args = parser.parse_args()
    clauses = ["attributes.status = 'FINISHED'", *([args.filter] if args.filter else [])]
    runs = mlflow.search_runs(experiment_names=[args.experiment], filter_string=" AND ".join(clauses))
    if f"tags.{REPORT_TAG}" in runs:
        runs = runs[runs[f"tags.{REPORT_TAG}"].ne("true")]
    runs = runs.sort_values("params.trainer.seed", key=lambda s: s.astype(int))
    test_rmse = dict(zip(runs["run_id"], runs["metrics.test_rmse"]))
    val_rmse = dict(zip(runs["run_id"], runs["metrics.val_rmse"]))
    tables = read_all(test_rmse)
    bad = [t for t in tables.values() if isinstance(t, Unusable)]
    if bad:
        raise SystemExit("; ".join(t.note() for t in bad))
    losses = daily_losses(tables)[0].dropna()
    ids = list(losses.columns)
    draws = DayDraws(len(losses))
    day_means = dict(zip(ids, draws.means(losses.to_numpy()).T))
    print(f"{len(ids)} runs (seeds {', '.join(runs['params.trainer.seed'])}), {len(losses)} test days; "
          f"test_rmse per seed: {', '.join(f'{test_rmse[i]:.1f}' for i in ids)}")

    for size in args.sizes:
        counts = dict.fromkeys(("DM (days) p < 0.05", "days-only interval excludes 0", "old verdict better/worse",
                                "Welch (test RMSE) p < 0.05", "two-level interval excludes 0",
                                "verdict better/worse"), 0)
        pairs = splits(ids, size)
        for first, second in pairs:
            a, b = losses[list(first)].to_numpy(), losses[list(second)].to_numpy()
            a_mean, b_mean = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
            dm_p = diebold_mariano_p((a_mean - b_mean).ravel())
            days_only = effect(a_mean, b_mean, draws)
            old_welch = welch([val_rmse[i] for i in first], [val_rmse[i] for i in second])
            dm_says = np.sign((a_mean - b_mean).mean())
            two_level = effect(a, b, draws, (np.stack([day_means[i] for i in first], axis=1),
                                             np.stack([day_means[i] for i in second], axis=1)))
            new_welch = welch([test_rmse[i] for i in first], [test_rmse[i] for i in second])
            decided = verdict(new_welch.statistic, new_welch.p_value, two_level.low, two_level.high, ALPHA)
            counts["DM (days) p < 0.05"] += dm_p < ALPHA
            counts["days-only interval excludes 0"] += not days_only.low <= 0 <= days_only.high
            counts["old verdict better/worse"] += (old_welch.p_value < ALPHA and dm_p < ALPHA
                                                   and np.sign(old_welch.statistic) == dm_says)
            counts["Welch (test RMSE) p < 0.05"] += new_welch.p_value < ALPHA
            counts["two-level interval excludes 0"] += not two_level.low <= 0 <= two_level.high
            counts["verdict better/worse"] += decided in ("better", "worse")
        print(f"\n{size} seeds against {size} other seeds: {len(pairs)} splits")
        for name, n in counts.items():
            print(f"  {name:<32} {n:>4} / {len(pairs)}  ({n / len(pairs):6.1%})")


if __name__ == "__main__":
    main()
