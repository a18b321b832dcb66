"""The trained models as forecasters, many at once: the model confidence set and SPA, from arch.

Each compared run is a trained model a user could deploy, and "tomorrow = today" (naive) is
the forecast to beat. On the T test days every one of them forecast, the daily losses (squared
errors) form a T × (runs + 1) matrix, and arch answers two questions over it:

- `arch.bootstrap.MCS` (Hansen, Lunde & Nason): the model confidence set, the models that cannot
  be told apart from the best at level alpha. `in_mcs` per run; the report names the groups with
  a model in the set, and `naive` when it is in it.
- `arch.bootstrap.SPA` (Hansen's superior predictive ability) with naive as the benchmark: the
  p-value of "no trained model beats naive", corrected for how many were tried (the consistent
  p-value).

Both resample moving blocks of ⌈T^(1/3)⌉ days (8 for 503 days; comparison.effect's rule), 1,000
replicates, seed 0. They speak of these trained models on these days: a seed's model that is
lucky on these days is in the set as that model, which says nothing of its configuration
(that is the verdict's job, comparison.verdict).

Cost: arch's MCS grows with the square of the models (`max` statistic, Hansen et al.'s T_max)
or their cube (`R`), SPA with T² × models (its variance estimate) plus replicates × T × models;
measured on 503 days: MCS `max` over 100 models 0.3 s, `R` 7 s, over 200 models 0.8 s and 99 s;
SPA over 2,000 models 15 s. So both use at most MODELS trained models: with more runs, the
MODELS with the lowest `val_rmse`. The rule looks at the validation days, never at the test days
the two tests read, so the choice does not favour models that were lucky on them (which is what
SPA corrects for). Runs beyond it are not examined (`in_mcs` empty), and the report says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pandas as pd

from lstmlab.comparison.effect import block_length

REPLICATES = 1000
SEED = 0
MODELS = 100  # trained models examined at most
CHOSEN_BY = "val_rmse"  # ... chosen by this metric, lowest first, when there are more
MIN_DAYS = 10  # fewer shared days: no MCS or SPA
NAIVE = "naive"
GROUPS_NAMED = 8  # groups named in the report's line on the set (the tag names them all)


@dataclass(frozen=True)
class ModelTests:
    """The MCS and SPA of one report's trained models (run ids) and naive."""

    days: int
    block: int
    in_mcs: dict[str, bool]  # run id → in the set, for the runs examined
    naive_in_mcs: bool
    spa_p: float
    candidates: int  # compared runs with predictions on the shared days (examined: the first MODELS by CHOSEN_BY)


def model_tests(losses: pd.DataFrame, naive: pd.Series, validation: pd.Series, alpha: float,
                most: int = MODELS) -> ModelTests | None:
    """MCS and SPA over `losses` (days × run ids: squared errors; NaN where a run has none) and
    `naive` (the naive forecast's squared errors), on the days all of them share; with more than
    `most` runs, over the `most` with the lowest `validation` (CHOSEN_BY per run id). None when
    fewer than MIN_DAYS or no run."""
    from arch.bootstrap import MCS, SPA

    if losses.empty:
        return None
    shared = losses.join(naive).dropna()
    if len(shared) < MIN_DAYS:
        return None
    block = block_length(len(shared))
    candidates = shared.columns.drop(NAIVE)
    examined = validation.reindex(candidates).sort_values(kind="stable").index[:most]  # NaN last
    trained = shared[examined]
    with warnings.catch_warnings():  # identical losses (e.g. two runs forecasting alike): arch warns, the set stays valid
        warnings.simplefilter("ignore", RuntimeWarning)
        mcs = MCS(shared[[*trained.columns, NAIVE]], size=alpha, reps=REPLICATES, block_size=block, method="max",
                  bootstrap="mbb", seed=SEED)
        mcs.compute()
        spa = SPA(shared[NAIVE], trained, block_size=block, reps=REPLICATES, bootstrap="mbb", seed=SEED)
        spa.compute()
    included = set(mcs.included)
    return ModelTests(days=len(shared), block=block, in_mcs={run_id: run_id in included for run_id in examined},
                      naive_in_mcs=NAIVE in included, spa_p=float(spa.pvalues["consistent"]),
                      candidates=len(candidates))


def in_mcs_column(run_ids: pd.Series, tests: ModelTests | None) -> pd.Series:
    """runs.csv's `in_mcs`: True/False for the runs the MCS examined, empty for the others."""
    if tests is None:
        return pd.Series(pd.NA, index=run_ids.index, dtype="boolean")
    return run_ids.map(tests.in_mcs).astype("boolean")


def mcs_groups(runs: pd.DataFrame, tests: ModelTests | None) -> str:
    """The `compare.mcs` tag: the groups with a model in the set, and naive when it is in it."""
    if tests is None:
        return "not computed"
    members = runs.loc[runs["run_id"].map(tests.in_mcs).fillna(False).astype(bool), "group"]
    names = list(dict.fromkeys(members)) + ([NAIVE] if tests.naive_in_mcs else [])
    return ", ".join(names)


def describe(runs: pd.DataFrame, tests: ModelTests | None, alpha: float) -> list[str]:
    """The report's and terminal's lines: model confidence set and SPA, saying what they speak of."""
    if tests is None:
        return [f"Model confidence set and SPA: not computed (fewer than {MIN_DAYS} test days shared by every run "
                "with predictions, or none)."]
    about = f"these trained models on these {tests.days} days, not their configurations"
    members = runs.loc[runs["run_id"].map(tests.in_mcs).fillna(False).astype(bool)]
    by_group = members["group"].value_counts(sort=False)
    counted = ", ".join(f"{group} {n}" for group, n in by_group.head(GROUPS_NAMED).items()) + (
        f", and {len(by_group) - GROUPS_NAMED} more groups (runs.csv: in_mcs)" if len(by_group) > GROUPS_NAMED else "")
    examined = len(tests.in_mcs)
    scope = (f"the {examined} trained models with the lowest {CHOSEN_BY} (of {tests.candidates}; the rest not "
             "examined: in_mcs empty) and naive" if examined < tests.candidates else f"{examined} trained models and naive")
    naive = "naive and " if tests.naive_in_mcs else ""
    held = f"{naive}{sum(tests.in_mcs.values())} run(s) ({counted})" if counted else "naive alone"
    verdict = ("some trained model beats naive" if tests.spa_p < alpha
               else "no trained model shown to beat naive")
    return [
        f"Model confidence set ({about}; arch MCS, T_max, level {1 - alpha:g}, over {scope}; moving blocks of "
        f"{tests.block} days, {REPLICATES} replicates, seed {SEED}): {held}.",
        f"SPA ({about}; arch SPA against naive over the same {examined} trained models, consistent p-value, "
        f"same blocks and seed): p = {_p(tests.spa_p)} — {verdict} at {alpha:g}, after accounting for "
        f"{examined} tried.",
    ]


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"
