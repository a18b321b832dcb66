"""Compare: finished runs against the baseline, like with like, with seed and day variance.

Which runs: every FINISHED run of the experiment that has the compared metric, narrowed by
`--sweep` (the children of one parent run) and/or `--filter` (an MLflow filter string); sweep
parents, pruned trials and compare's own report runs are left out (comparison.selection). The
baseline is the latest FINISHED run tagged `baseline=true` (on `--data` when given; within the
selection when it holds one), or the run given with `--baseline`. Then only runs evaluated like
the baseline stay, and only those on its data unless `--all` (comparison.scope). Seed groups:
comparison.groups; their verdicts: comparison.verdict; the trained models as forecasters (MCS,
SPA): comparison.forecasters.

Reads MLflow, pandas and each run's predictions.csv: no TensorFlow/Keras import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd

from lstmlab.comparison.defaults import ALPHA, TRAIN_SEEDS
from lstmlab.comparison.forecasters import CHOSEN_BY, ModelTests, in_mcs_column, model_tests, to_examine
from lstmlab.comparison.groups import group_keys, group_labels, group_table, run_table
from lstmlab.comparison.power import EFFECT, MARGIN
from lstmlab.comparison.predictions import daily_losses, read_all, unusable_notes
from lstmlab.comparison.scope import (
    DATA_COLUMN,
    data_names,
    evaluation_keys,
    left_out_notes,
    on_data,
    with_defaults,
)
from lstmlab.comparison.seeds import TESTED_METRIC
from lstmlab.comparison.selection import comparable, one_run_per_seed, pick_baseline, search_ended, sweep_parent
from lstmlab.errors import LstmlabError
from lstmlab.names import CONFIRM_BASELINE_TAG, CONFIRM_TRIAL_TAG, FINAL_METRICS
from lstmlab.paths import config_dir
from lstmlab.plural import count
from lstmlab.secrets import mask


@dataclass
class Comparison:
    """Everything compare found: the runs, the seed groups, and how they were chosen."""

    experiment: str
    experiment_id: str
    store: str
    metric: str  # what the tables are sorted by; the verdict reads test_rmse (comparison.seeds)
    alpha: float
    margin: float  # "equivalent" within ±margin (comparison.verdict)
    effect: float  # the change seeds_needed plans for (comparison.power)
    baseline_run_id: str
    runs: pd.DataFrame  # one row per run (failed ones too): final metrics, differences from the baseline run, in_mcs
    groups: pd.DataFrame  # one row per seed group: mean/sd/n, failed, the effect, its strength, the verdict, in_mcs
    selection: str  # the words for which runs were selected
    data: str = ""  # the baseline's data: its name and data_sha256 prefix ("mixed: ..." with --all)
    evaluation: str = ""  # the evaluation setup every compared run shares
    models: ModelTests | None = None  # MCS and SPA over the runs on the baseline's data, and naive
    notes: list[str] = field(default_factory=list)


def default_experiment() -> str:
    """The experiment `lstmlab train` logs to (conf/tracking/mlflow.yaml), read without Hydra."""
    from omegaconf import OmegaConf

    return str(OmegaConf.load(Path(config_dir()) / "tracking" / "mlflow.yaml").experiment)


def forecasts(shown: pd.DataFrame, base_run_id: str, alpha: float,
              cache: Path | None) -> tuple[ModelTests | None, list[str]]:
    """The model tests (MCS of runs and of configurations, SPA) over the finished runs' checked
    predictions, and the notes on damaged or missing predictions. Only runs on the baseline's data
    are tested: runs on other data forecast other days."""
    finished = shown[~shown["failed"]]
    fingerprints = finished.get(DATA_COLUMN, pd.Series("", index=finished.index)).fillna("")
    on_base_data = finished[fingerprints.eq(fingerprints[finished["run_id"] == base_run_id].iloc[0])].set_index("run_id")
    validation = on_base_data.get(f"metrics.{CHOSEN_BY}", pd.Series(math.nan, index=on_base_data.index))
    groups = on_base_data["group"].to_dict()
    recorded = on_base_data.get(f"metrics.{TESTED_METRIC}", pd.Series(math.nan, index=on_base_data.index))
    wanted = to_examine(validation, groups)  # the predictions the model tests can use: not all of a big study's
    tables = read_all({run_id: recorded[run_id] for run_id in wanted}, cache)
    losses, naive = daily_losses(tables)
    tests = model_tests(losses, naive, validation, alpha, groups=groups)
    return tests, unusable_notes(tables.values())


def confirm_runs(everything: pd.DataFrame, runs: pd.DataFrame, parent: str, baseline: str | None) -> tuple[set[str], str]:
    """A sweep's confirm runs (its children tagged confirm.trial or confirm.baseline) and the
    baseline run to judge them by: `baseline` when given, else the latest confirm baseline run
    that finished."""
    def tag(name: str) -> pd.Series:
        return everything.get(f"tags.{name}", pd.Series(None, index=everything.index, dtype=object))

    confirming = tag(CONFIRM_TRIAL_TAG).notna() | tag(CONFIRM_BASELINE_TAG).eq("true")
    children = everything[tag("mlflow.parentRunId").eq(parent) & confirming]
    if children.empty:
        raise LstmlabError(f"sweep {parent} has no confirm runs: run it with hydra.sweeper.confirm.top_k=K "
                           "hydra.sweeper.confirm.seeds=N")
    if baseline is None:
        finished = runs[runs["run_id"].isin(children["run_id"]) & ~runs["failed"]]
        bases = finished[finished.get(f"tags.{CONFIRM_BASELINE_TAG}", pd.Series(None, index=finished.index)).eq("true")]
        if bases.empty:
            raise LstmlabError(f"sweep {parent} has no confirm baseline run that finished: rerun the sweep's command "
                               "to train what is missing")
        baseline = str(bases.sort_values("start_time").iloc[-1]["run_id"])
    return set(children["run_id"]), baseline


def compare(
    experiment: str | None = None,
    baseline: str | None = None,
    sweep: str | None = None,
    metric: str = "val_rmse",
    filter_string: str | None = None,
    alpha: float = ALPHA,
    data: str | None = None,
    include_all: bool = False,
    cache: Path | None = None,
    margin: float = MARGIN,
    effect: float = EFFECT,
    confirm: bool = False,
) -> Comparison:
    """Runs of `experiment` (narrowed by `sweep` / `filter_string` / `data`) against the baseline,
    on the baseline's evaluation, and on its data unless `include_all`. `cache`: where the runs'
    predictions are kept (default: comparison.predictions.default_cache()); `margin`: the
    equivalence margin; `effect`: the change `seeds_needed` plans for (both relative, 0.05: 5 %).
    `confirm`: only the `sweep`'s confirm runs (the top trials and the baseline retrained on fresh
    seeds, tagged confirm.trial / confirm.baseline), against its confirm baseline and nothing else:
    the sweep's own verdict (selection on validation, judgment on fresh seeds' test days)."""
    if metric not in FINAL_METRICS:
        raise LstmlabError(f"--metric {metric!r} is not a final metric; use one of {', '.join(FINAL_METRICS)}")
    if not 0 < alpha < 1:
        raise LstmlabError(f"--alpha {alpha} must be between 0 and 1")
    for name, value in (("--margin", margin), ("--effect", effect)):
        if not 0 < value < 1:
            raise LstmlabError(f"{name} {value} must be a relative change between 0 and 1 (0.05: 5 %)")
    experiment = experiment or default_experiment()
    store = mask(mlflow.get_tracking_uri())  # shown in the header and the report: never a password
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in mlflow.search_experiments())) or "none"
        raise LstmlabError(
            f"no experiment named {experiment!r} in {store} (experiments there: {names}); "
            "pick one with --experiment NAME"
        )
    everything = search_ended(found.experiment_id, None)
    runs = comparable(everything, metric)
    if runs.empty or runs["failed"].all():
        raise LstmlabError(
            f"experiment {experiment!r} in {store} has no finished runs with {metric}; "
            f"train some first: {TRAIN_SEEDS}"
        )
    clauses, words = [], []
    if sweep:
        parent = sweep_parent(found.experiment_id, sweep)
        clauses.append(f"tags.mlflow.parentRunId = '{parent}'")
        words.append(f"sweep {parent}")
    if filter_string:
        clauses.append(filter_string)
        words.append(f"filter {filter_string!r}")
    if confirm:
        if not sweep:
            raise LstmlabError("--confirm compares a sweep's confirm runs: give the sweep with --sweep STUDY|PARENT_RUN_ID")
        selected, baseline = confirm_runs(everything, runs, parent, baseline)
        words.append("its confirm runs")
    elif filter_string:  # MLflow's grammar: its search answers
        selected = set(search_ended(found.experiment_id, " AND ".join(clauses))["run_id"])
    elif sweep:  # the parent's children, from the table already read
        parents = everything.get("tags.mlflow.parentRunId", pd.Series(None, index=everything.index, dtype=object))
        selected = set(everything.loc[parents.eq(parent), "run_id"])
    else:
        selected = set(runs["run_id"])
    selected &= set(runs["run_id"])
    if not selected:
        raise LstmlabError(f"no finished runs with {metric} in experiment {experiment!r} match {' and '.join(words)}")

    runs = with_defaults(runs)
    runs = runs.assign(group_key=group_keys(runs), evaluation=evaluation_keys(runs), data_name=data_names(runs))
    runs, repeats = one_run_per_seed(runs)
    selected &= set(runs["run_id"])
    on = on_data(runs, data) if data else pd.Series(True, index=runs.index)
    if data:
        words.append(f"data {data!r}")
    base = pick_baseline(runs if baseline else runs[on], selected, baseline, experiment,
                         f" on data {data!r}" if data else "")
    if data and not on[runs["run_id"] == base["run_id"]].any():
        raise LstmlabError(f"--baseline {baseline} is on data {base['data_name']}, not on --data {data!r}")
    base_key = base["group_key"]

    # No paired test spans two evaluations (other test days, or other models for them): never
    # mixed. Other data only with --all, and then without a verdict (comparison.verdict).
    same_evaluation = runs["evaluation"].eq(base["evaluation"])
    if not include_all and DATA_COLUMN in runs:
        on = on & runs[DATA_COLUMN].eq(base[DATA_COLUMN]).fillna(False)
    in_selection = runs["run_id"].isin(selected)
    notes = left_out_notes(runs[in_selection], on[in_selection], same_evaluation[in_selection], data_note=not data)
    # the baseline's group whole, from outside the selection too; a confirm stage's alone
    baseline_group = (runs["group_key"] == base_key) & (in_selection | (not confirm))
    shown = runs[(in_selection & on & same_evaluation) | baseline_group].copy()
    labels = group_labels(shown)
    shown["group"] = shown["group_key"].map(labels)
    models, unreadable = forecasts(shown, str(base["run_id"]), alpha, cache)
    notes += unreadable

    if repeats:
        notes.append(
            f"Left out {count(repeats, 'older run')} repeating a configuration and seed (e.g. a rerun's "
            "original, or a failed try trained again): a repeat is the same sample again, so each seed counts "
            "once (the latest run that finished, else the latest)."
        )
    outside = int((~shown["run_id"].isin(selected)).sum())
    if outside:
        notes.append(f"The baseline's group adds {count(outside, 'run')} from outside the selection.")
    datasets = sorted(set(shown["data_name"]))
    if len(datasets) > 1:
        notes.append(f"Runs on {len(datasets)} datasets ({'; '.join(datasets)}): groups on other data than the "
                     "baseline's get neither test and no verdict.")
    return Comparison(
        experiment=experiment,
        experiment_id=found.experiment_id,
        store=store,
        metric=metric,
        alpha=alpha,
        margin=margin,
        effect=effect,
        baseline_run_id=str(base["run_id"]),
        runs=run_table(shown, base, metric).assign(in_mcs=lambda table: in_mcs_column(table["run_id"], models)),
        groups=group_table(shown, base_key, metric, alpha, margin, effect).assign(
            in_mcs=lambda table: in_mcs_column(table["group"], models, by_group=True)),
        selection=" and ".join(words) or ("runs evaluated like the baseline's" if include_all else "runs like the baseline's"),
        data=base["data_name"] if len(datasets) == 1 else f"mixed: {'; '.join(datasets)}",
        evaluation=str(base["evaluation"]),
        notes=notes,
        models=models,
    )

