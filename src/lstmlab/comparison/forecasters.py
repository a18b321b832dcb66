"""The trained models as forecasters, many at once: the model confidence set and SPA, from arch.

Each compared run is a trained model a user could deploy, and "tomorrow = today" (naive) is
the forecast to beat. On the T test days every one of them forecast, the daily losses (squared
errors) form a T × (runs + 1) matrix, and arch answers two questions over it:

- `arch.bootstrap.MCS` (Hansen, Lunde & Nason): the model confidence set, the models that cannot
  be told apart from the best at level alpha. Twice: over the trained models (`in_mcs` per run
  in runs.csv), and over the configurations, each one's daily loss averaged over its seeds (what
  a fresh training of it loses on average each day): `in_mcs` per group in groups.csv and the
  `compare.mcs` tag. So a configuration is in the set on its own merit, never because one of
  its seeds happened to be (more seeds would then mean more chances).
- `arch.bootstrap.SPA` (Hansen's superior predictive ability) with naive as the benchmark: the
  p-value of "no trained model beats naive", corrected for how many were tried (the consistent
  p-value). Studentized: each model's loss difference against naive is divided by its long-run
  standard deviation before arch sees it. arch's SPA computes those variances but uses them only
  to drop hopeless models, not in its statistic (max of the mean differences), so unscaled, one
  noisy model whose mean equals naive's can hide another that truly beats naive.

Both resample moving blocks of days whose length comes from the data: the Politis–White
optimal length (`arch.bootstrap.optimal_block_length`, its circular estimate, which applies to
moving blocks) of each examined model's loss difference against naive, the median of them,
rounded up. Price-level errors persist for weeks (lag-1 autocorrelation ~0.95: blocks of
30–40 days), log-return errors hardly at all (a few days); one rule for every target would be
too short for one or too long for the other. 1,000 replicates, seed 0. They speak of these
trained models (or configurations' averages) on these days, not of what the configurations would
do on other days.

Cost: arch's MCS grows with the square of the models (`max` statistic, Hansen et al.'s T_max),
SPA with T² × models plus replicates × T × models; measured on 503 days: MCS `max` over 100
models 0.3 s, over 200 0.8 s; SPA over 2,000 models 15 s. So both use at most MODELS models:
with more, the MODELS with the lowest `val_rmse` (configurations: the lowest mean). The rule
looks at the validation days, never at the test days the tests read, so the choice does not
favour models that were lucky on them (which is what SPA corrects for). Models beyond it are not
examined (`in_mcs` empty), and the report says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

REPLICATES = 1000
SEED = 0
MODELS = 100  # models (runs, or configurations) examined at most
CHOSEN_BY = "val_rmse"  # ... chosen by this metric, lowest first, when there are more
MIN_DAYS = 10  # fewer shared days: no MCS or SPA
NAIVE = "naive"
GROUPS_NAMED = 8  # groups named in the report's line on the set (the tag names them all)


@dataclass(frozen=True)
class ModelTests:
    """The MCS (of runs and of configurations) and SPA of one report's trained models and naive."""

    days: int
    block: int  # moving-block length (Politis–White, median over the examined models)
    block_range: tuple[int, int]  # the examined models' own Politis–White lengths, lowest and highest
    in_mcs: dict[str, bool]  # run id → in the set of trained models, for the runs examined
    naive_in_mcs: bool
    groups_in_mcs: dict[str, bool]  # group → its seed-averaged loss in the set of configurations
    naive_in_groups_mcs: bool
    spa_p: float
    candidates: int  # compared runs with predictions on the shared days (examined: the first MODELS by CHOSEN_BY)
    group_candidates: int


def block_length(differences: pd.DataFrame) -> tuple[int, tuple[int, int]]:
    """The moving-block length for loss differences (days × models): the median of the columns'
    Politis–White circular lengths, rounded up, at least 1 and at most a third of the days; and
    the columns' own lengths, lowest and highest."""
    from arch.bootstrap import optimal_block_length

    varied = differences.loc[:, differences.std() > 0]
    if varied.empty:
        return 1, (1, 1)
    with warnings.catch_warnings():  # a column with little structure: arch warns, its length is still an estimate
        warnings.simplefilter("ignore", RuntimeWarning)
        lengths = optimal_block_length(varied.to_numpy())["circular"].to_numpy()
    lengths = np.clip(np.ceil(lengths), 1, max(1, len(differences) // 3))
    return int(np.ceil(np.median(lengths))), (int(lengths.min()), int(lengths.max()))


def long_run_sd(differences: np.ndarray, block: int) -> np.ndarray:
    """Each column's long-run standard deviation: the stationary-bootstrap variance estimator
    arch's SPA uses (Politis & Romano's kernel with p = 1/block), so the scaled differences are
    what SPA's studentized statistic reads. By hand: arch keeps it in a private method."""
    days = differences.shape[0]
    centred = differences - differences.mean(axis=0)
    p = 1.0 / block
    variance = np.sum(centred**2, axis=0) / days
    for lag in range(1, days):
        kappa = (1 - lag / days) * (1 - p) ** lag + (lag / days) * (1 - p) ** (days - lag)  # both ends: circular
        variance += 2 * kappa * np.sum(centred[: days - lag] * centred[lag:], axis=0) / days
    return np.sqrt(np.maximum(variance, 0.0))


def studentized_spa_p(benchmark: pd.Series, models: pd.DataFrame, block: int) -> float:
    """SPA's consistent p-value of "no model beats the benchmark", each model's loss difference
    scaled by its long-run sd (a model identical to the benchmark keeps its zero differences)."""
    from arch.bootstrap import SPA

    differences = benchmark.to_numpy()[:, None] - models.to_numpy()
    sd = long_run_sd(differences, block)
    scaled = differences / np.where(sd > 0, sd, 1.0)
    # arch's SPA takes losses: a benchmark of zeros and models of −scaled make its differences `scaled`
    spa = SPA(np.zeros(len(benchmark)), -scaled, block_size=block, reps=REPLICATES, bootstrap="mbb", seed=SEED)
    spa.compute()
    return float(spa.pvalues["consistent"])


def model_confidence_set(losses: pd.DataFrame, naive: pd.Series, alpha: float, block: int) -> set[str]:
    """The columns of `losses` (and naive) in arch's model confidence set, T_max statistic."""
    from arch.bootstrap import MCS

    mcs = MCS(losses.join(naive), size=alpha, reps=REPLICATES, block_size=block, method="max", bootstrap="mbb", seed=SEED)
    mcs.compute()
    return {str(name) for name in mcs.included}


def examined(candidates: pd.Index, validation: pd.Series, most: int) -> pd.Index:
    """The candidates with the lowest `validation`, at most `most` (NaN last)."""
    return validation.reindex(candidates).sort_values(kind="stable").index[:most]


def to_examine(validation: pd.Series, groups: Mapping[str, str], most: int = MODELS) -> list[str]:
    """The runs whose predictions the model tests can use (validation: CHOSEN_BY per run id;
    groups: each run's group): the `most` with the lowest validation, and every run of the `most`
    groups with the lowest mean. Only these need their predictions read: with 2,000 runs, a few
    hundred."""
    group_of = pd.Series({run_id: groups.get(run_id, run_id) for run_id in validation.index}, dtype=object)
    best_groups = set(examined(pd.Index(group_of.unique()), validation.groupby(group_of).mean(), most))
    return list(dict.fromkeys([*examined(validation.index, validation, most),
                               *group_of.index[group_of.isin(best_groups)]]))


def model_tests(losses: pd.DataFrame, naive: pd.Series, validation: pd.Series, alpha: float,
                groups: Mapping[str, str] | None = None, most: int = MODELS) -> ModelTests | None:
    """MCS and SPA over `losses` (days × run ids: squared errors; NaN where a run has none) and
    `naive` (the naive forecast's squared errors), on the days all of them share; with more than
    `most` runs, over the `most` with the lowest `validation` (CHOSEN_BY per run id: every
    candidate, also those whose predictions were not read because `to_examine` left them out).
    `groups`: each run's group, for the MCS of configurations (their runs' losses averaged per
    day; default: a group per run). None when fewer than MIN_DAYS or no run."""
    if losses.empty:
        return None
    shared = losses.join(naive).dropna()
    if len(shared) < MIN_DAYS:
        return None
    read = shared.columns.drop(NAIVE)
    candidates = read.union(validation.index, sort=False)
    runs = examined(read, validation, most)
    trained = shared[runs]
    group_of = pd.Series({run_id: (groups or {}).get(run_id, run_id) for run_id in candidates}, dtype=object)
    averaged = shared[read].T.groupby(group_of[read]).mean().T  # days × groups: each configuration's mean loss per day
    group_validation = validation.reindex(candidates).groupby(group_of).mean()
    configurations = averaged[examined(averaged.columns, group_validation, most)]
    block, block_range = block_length(trained.join(configurations, rsuffix=" (group)").rsub(shared[NAIVE], axis=0))
    with warnings.catch_warnings():  # identical losses (e.g. two runs forecasting alike): arch warns, the set stays valid
        warnings.simplefilter("ignore", RuntimeWarning)
        run_set = model_confidence_set(trained, shared[NAIVE], alpha, block)
        group_set = model_confidence_set(configurations, shared[NAIVE], alpha, block)
        spa_p = studentized_spa_p(shared[NAIVE], trained, block)
    return ModelTests(
        days=len(shared), block=block, block_range=block_range,
        in_mcs={run_id: run_id in run_set for run_id in runs}, naive_in_mcs=NAIVE in run_set,
        groups_in_mcs={group: group in group_set for group in configurations.columns},
        naive_in_groups_mcs=NAIVE in group_set, spa_p=spa_p,
        candidates=len(candidates), group_candidates=int(group_of.nunique()),
    )


def in_mcs_column(keys: pd.Series, tests: ModelTests | None, by_group: bool = False) -> pd.Series:
    """runs.csv's `in_mcs` (run ids; groups.csv's with `by_group`: group labels): True/False for
    the models the MCS examined, empty for the others."""
    if tests is None:
        return pd.Series(pd.NA, index=keys.index, dtype="boolean")
    return keys.map(tests.groups_in_mcs if by_group else tests.in_mcs).astype("boolean")


def mcs_groups(tests: ModelTests | None) -> str:
    """The `compare.mcs` tag: the configurations in the set, and naive when it is in it."""
    if tests is None:
        return "not computed"
    names = [group for group, kept in tests.groups_in_mcs.items() if kept] + ([NAIVE] if tests.naive_in_groups_mcs else [])
    return ", ".join(names)


def describe(runs: pd.DataFrame, tests: ModelTests | None, alpha: float) -> list[str]:
    """The report's and terminal's lines: both model confidence sets and SPA, saying what they speak of."""
    if tests is None:
        return [f"Model confidence set and SPA: not computed (fewer than {MIN_DAYS} test days shared by every run "
                "with predictions, or none)."]
    days = f"these {tests.days} days"
    low, high = tests.block_range
    blocks = (f"moving blocks of {tests.block} days (Politis–White, the median of the models' "
              f"{low}–{high}), {REPLICATES} replicates, seed {SEED}")
    members = runs.loc[runs["run_id"].map(tests.in_mcs).fillna(False).astype(bool)]
    by_group = members["group"].value_counts(sort=False)
    counted = ", ".join(f"{group} {n}" for group, n in by_group.head(GROUPS_NAMED).items()) + (
        f", and {len(by_group) - GROUPS_NAMED} more groups (runs.csv: in_mcs)" if len(by_group) > GROUPS_NAMED else "")
    runs_examined = len(tests.in_mcs)
    scope = (f"the {runs_examined} trained models with the lowest {CHOSEN_BY} (of {tests.candidates}; the rest not "
             "examined: in_mcs empty)" if runs_examined < tests.candidates else f"{runs_examined} trained models")
    held = f"{'naive and ' if tests.naive_in_mcs else ''}{sum(tests.in_mcs.values())} run(s) ({counted})" if counted \
        else "naive alone"
    kept = [group for group, inside in tests.groups_in_mcs.items() if inside]
    groups_examined = len(tests.groups_in_mcs)
    group_scope = (f"the {groups_examined} with the lowest mean {CHOSEN_BY} of {tests.group_candidates}"
                   if groups_examined < tests.group_candidates else f"{groups_examined}")
    named = ", ".join(kept[:GROUPS_NAMED]) + (f" and {len(kept) - GROUPS_NAMED} more (groups.csv: in_mcs)"
                                               if len(kept) > GROUPS_NAMED else "")
    group_held = (f"{'naive and ' if tests.naive_in_groups_mcs else ''}{named}" if kept
                  else "naive alone" if tests.naive_in_groups_mcs else "none")
    verdict = "some trained model beats naive" if tests.spa_p < alpha else "no trained model shown to beat naive"
    return [
        f"Model confidence set of configurations (each one's daily squared error averaged over its seeds, {group_scope} "
        f"configurations and naive; arch MCS, T_max, level {1 - alpha:g}, {blocks}): {group_held}.",
        f"Model confidence set of trained models (these models on {days}, not their configurations; over {scope} "
        f"and naive, same test and blocks): {held}.",
        f"SPA (these trained models on {days}; arch SPA against naive over the same {runs_examined} models, each "
        f"model's loss difference studentized by its long-run sd, consistent p-value, same blocks): "
        f"p = {_p(tests.spa_p)} — {verdict} at {alpha:g}, after accounting for {runs_examined} tried.",
    ]


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"
