"""`lstmlab compare`: finished runs against the baseline, with seed variance.

Which runs: every FINISHED run of the experiment that has the compared metric, narrowed by
`--sweep` (the children of one parent run) and/or `--filter` (an MLflow filter string); sweep
parents and pruned trials are left out. The baseline is the latest FINISHED run tagged
`baseline=true` (within the selection when it holds one, else in the whole experiment), or the
run given with `--baseline`.

Seed groups: runs whose logged params are equal except `trainer.seed` (and the params that do
not change what is trained: verbosity and where the run is recorded), on data with the same
fingerprint, form one group. Within a group, runs repeating a seed (reruns, retraining) count
once, the latest: a repeat is the same sample again, not a new one. Each group is tested
against the baseline's group with Welch's t-test (lstmlab.stats).

Reads MLflow and pandas only: no TensorFlow/Keras import, so it starts in about a second.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab import stats
from lstmlab.errors import LstmlabError
from lstmlab.records import FINAL_METRICS, use_current_store

# Params that say how a run was recorded or displayed, not what was trained.
NOT_CONFIGURING = frozenset(
    {
        "trainer.seed",
        "trainer.verbose",
        "tracking.uri",
        "tracking.experiment",
        "tracking.run_name",
        "tracking.log_model",
    }
)
FINGERPRINT_TAG = "tags.data_sha256"
REPORTS_DIR = Path("experiments") / "reports"
TRAIN_SEEDS = "lstmlab train -m 'variant=glob(*)' trainer.seed=1,2,3"
# Columns of the terminal / Markdown run table (every final metric is in runs.csv).
RUN_TABLE_METRICS = ("test_rmse", "test_mae", "test_skill", "naive_test_rmse")


@dataclass
class Comparison:
    """Everything compare found: the runs, the seed groups, and how they were chosen."""

    experiment: str
    store: str
    metric: str
    alpha: float
    baseline_run_id: str
    runs: pd.DataFrame  # one row per run: final metrics, differences from the baseline run
    groups: pd.DataFrame  # one row per seed group: mean/sd/n, Welch's test vs the baseline group
    selection: str  # the words for which runs were selected
    notes: list[str] = field(default_factory=list)


def default_experiment() -> str:
    """The experiment `lstmlab train` logs to (conf/tracking/mlflow.yaml), read without Hydra."""
    from omegaconf import OmegaConf

    from lstmlab.cli import config_dir

    return str(OmegaConf.load(Path(config_dir()) / "tracking" / "mlflow.yaml").experiment)


def compare(
    experiment: str | None = None,
    baseline: str | None = None,
    sweep: str | None = None,
    metric: str = "val_rmse",
    filter_string: str | None = None,
    alpha: float = stats.ALPHA,
) -> Comparison:
    """Runs of `experiment` (narrowed by `sweep` / `filter_string`) against the baseline."""
    if metric not in FINAL_METRICS:
        raise LstmlabError(f"--metric {metric!r} is not a final metric; use one of {', '.join(FINAL_METRICS)}")
    if not 0 < alpha < 1:
        raise LstmlabError(f"--alpha {alpha} must be between 0 and 1")
    experiment = experiment or default_experiment()
    store = mlflow.get_tracking_uri()
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        names = ", ".join(sorted(e.name for e in mlflow.search_experiments())) or "none"
        raise LstmlabError(
            f"no experiment named {experiment!r} in {store} (experiments there: {names}); "
            "pick one with --experiment NAME"
        )
    everything = _search(found.experiment_id, None)
    runs = _comparable(everything, metric)
    if runs.empty:
        raise LstmlabError(
            f"experiment {experiment!r} in {store} has no finished runs with {metric}; "
            f"train some first: {TRAIN_SEEDS}"
        )
    clauses, words = [], []
    if sweep:
        parent = _sweep_parent(found.experiment_id, sweep)
        clauses.append(f"tags.mlflow.parentRunId = '{parent}'")
        words.append(f"sweep {parent}")
    if filter_string:
        clauses.append(filter_string)
        words.append(f"filter {filter_string!r}")
    selected = set(_search(found.experiment_id, " AND ".join(clauses))["run_id"]) if clauses else set(runs["run_id"])
    selected &= set(runs["run_id"])
    if not selected:
        raise LstmlabError(f"no finished runs with {metric} in experiment {experiment!r} match {' and '.join(words)}")

    runs = runs.assign(group_key=_group_keys(runs))
    runs, repeats = _one_run_per_seed(runs)
    selected &= set(runs["run_id"])
    base = _pick_baseline(runs, selected, baseline, experiment)
    base_key = base["group_key"]
    shown = runs[runs["run_id"].isin(selected) | (runs["group_key"] == base_key)].copy()
    labels = _group_labels(shown)
    shown["group"] = shown["group_key"].map(labels)

    notes = []
    if repeats:
        notes.append(
            f"Left out {_count(repeats, 'older run')} repeating a configuration and seed (e.g. a rerun's "
            "original): a repeat is the same sample again, so each seed counts once (the latest run)."
        )
    outside = int((~shown["run_id"].isin(selected)).sum())
    if outside:
        notes.append(f"The baseline's group adds {_count(outside, 'run')} from outside the selection.")
    return Comparison(
        experiment=experiment,
        store=store,
        metric=metric,
        alpha=alpha,
        baseline_run_id=str(base["run_id"]),
        runs=_run_table(shown, base, metric),
        groups=_group_table(shown, base_key, metric, alpha),
        selection=" and ".join(words) or "all runs",
        notes=notes,
    )


def _search(experiment_id: str, filter_string: str | None) -> pd.DataFrame:
    clauses = ["attributes.status = 'FINISHED'", *([filter_string] if filter_string else [])]
    try:
        return mlflow.search_runs(experiment_ids=[experiment_id], filter_string=" AND ".join(clauses))
    except MlflowException as error:
        raise LstmlabError(f"bad filter {filter_string!r}: {error.message}") from None


def _comparable(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Runs with the metric, without sweep parents (their metrics summarize children) or pruned trials."""
    if f"metrics.{metric}" not in runs:
        return runs.iloc[0:0]
    keep = runs[f"metrics.{metric}"].notna()
    if "tags.mlflow.parentRunId" in runs:
        keep &= ~runs["run_id"].isin(set(runs["tags.mlflow.parentRunId"].dropna()))
    if "tags.optuna_study" in runs:  # a study's parent run, even before any trial finished
        trial = runs["tags.optuna_trial"].notna() if "tags.optuna_trial" in runs else False
        keep &= runs["tags.optuna_study"].isna() | trial
    if "tags.state" in runs:
        keep &= runs["tags.state"].ne("pruned")
    return runs[keep].reset_index(drop=True)


def _sweep_parent(experiment_id: str, sweep: str) -> str:
    """`--sweep` is the parent run's id, or a study name (the parent's `optuna_study` tag)."""
    try:
        return mlflow.get_run(sweep).info.run_id
    except MlflowException:
        pass
    parents = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.optuna_study = '{sweep}'",
        order_by=["attributes.start_time DESC"],
    )
    if "tags.mlflow.parentRunId" in parents:
        parents = parents[parents["tags.mlflow.parentRunId"].isna()]
    if parents.empty:
        raise LstmlabError(f"--sweep {sweep!r} is neither a run id nor a study name (tag optuna_study) in this experiment")
    return str(parents.iloc[0]["run_id"])


def _group_keys(runs: pd.DataFrame) -> pd.Series:
    """Equal keys ⇔ equal configuration but for the seed, and the same data."""
    columns = sorted(c for c in runs.columns if c.startswith("params.") and c[len("params."):] not in NOT_CONFIGURING)
    if FINGERPRINT_TAG in runs:
        columns.append(FINGERPRINT_TAG)
    return runs[columns].astype("string").fillna("<unset>").apply(tuple, axis=1)


def _one_run_per_seed(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    seed = runs["params.trainer.seed"] if "params.trainer.seed" in runs else runs["run_id"]
    latest = runs.assign(_seed=seed.fillna(runs["run_id"])).sort_values("start_time", ascending=False)
    kept = latest.drop_duplicates(subset=["group_key", "_seed"]).drop(columns="_seed")
    return kept.reset_index(drop=True), len(runs) - len(kept)


def _pick_baseline(runs: pd.DataFrame, selected: set[str], baseline: str | None, experiment: str) -> pd.Series:
    if baseline:
        match = runs[runs["run_id"].str.startswith(baseline.lower())]  # the id or a prefix of it
        if len(match) > 1:
            raise LstmlabError(f"--baseline {baseline} matches {len(match)} runs; give more of the id")
        if match.empty:
            raise LstmlabError(
                f"--baseline {baseline}: no finished run with final metrics by that id in experiment {experiment!r}"
                " (an older repeat of the same seed counts as its latest repeat)"
            )
        return match.iloc[0]
    tagged = runs[runs.get("tags.baseline", pd.Series(index=runs.index, dtype=object)) == "true"]
    if tagged.empty:
        raise LstmlabError(
            f"no baseline in experiment {experiment!r}: no finished run is tagged baseline=true; "
            "train one (lstmlab train) or pick a run with --baseline RUN_ID"
        )
    inside = tagged[tagged["run_id"].isin(selected)]
    return (inside if not inside.empty else tagged).sort_values("start_time").iloc[-1]


def _group_labels(runs: pd.DataFrame) -> dict[tuple, str]:
    """The variant name, plus the params that tell apart groups sharing one variant name."""
    first = runs.drop_duplicates("group_key").set_index("group_key")
    names = first.get("tags.variant", first["tags.mlflow.runName"]).fillna(first["tags.mlflow.runName"]).astype(str)
    labels = {}
    for name, keys in names.groupby(names).groups.items():
        if len(keys) == 1:
            labels[keys[0]] = name
            continue
        rows = first.loc[list(keys)]
        differing = [  # `_target_` only repeats the class a `name` param already tells
            c for c in sorted(rows.columns)
            if (c.startswith("params.") or c == FINGERPRINT_TAG) and not c.endswith("._target_")
            and c[len("params."):] not in NOT_CONFIGURING and rows[c].astype("string").nunique(dropna=False) > 1
        ]
        for key in keys:
            parts = [f"data={rows.at[key, c][:8]}" if c == FINGERPRINT_TAG else f"{c[len('params.'):]}={rows.at[key, c]}"
                     for c in differing[:4]]
            labels[key] = f"{name} ({', '.join(parts)})"
    return labels


def _better_first(metric: str) -> bool:
    """sort_values' `ascending` for best first."""
    return metric not in stats.HIGHER_IS_BETTER


def _run_table(runs: pd.DataFrame, base: pd.Series, metric: str) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": runs["tags.mlflow.runName"],
            "group": runs["group"],
            "seed": runs.get("params.trainer.seed"),
            "baseline_run": runs["run_id"] == base["run_id"],
            "start_time": runs["start_time"],
        }
    )
    for name in FINAL_METRICS:
        column = f"metrics.{name}"
        values = runs[column] if column in runs else pd.Series(math.nan, index=runs.index)
        reference = base.get(column, math.nan)
        table[name] = values
        table[f"{name}_diff"] = values - reference
        table[f"{name}_rel_diff"] = (values - reference) / abs(reference) if reference else math.nan
    return table.sort_values(metric, ascending=_better_first(metric), kind="stable").reset_index(drop=True)


def _group_table(runs: pd.DataFrame, base_key: tuple, metric: str, alpha: float) -> pd.DataFrame:
    column = f"metrics.{metric}"
    reference = runs.loc[runs["group_key"] == base_key, column].tolist()
    base_mean = stats.summary(reference)[0]
    rows = []
    for key, members in runs.groupby("group_key", sort=False):
        row = {
            "group": members["group"].iloc[0],
            "variant": members.get("tags.variant", members["tags.mlflow.runName"]).iloc[0],
            "baseline_group": key == base_key,
            "n": len(members),
            "seeds": ",".join(sorted(members.get("params.trainer.seed", pd.Series(dtype=str)).dropna().astype(str), key=_natural)),
        }
        for name in FINAL_METRICS:
            values = members[f"metrics.{name}"].tolist() if f"metrics.{name}" in members else []
            row[f"{name}_mean"], row[f"{name}_sd"], _ = stats.summary(values)
        row[f"{metric}_diff"] = row[f"{metric}_mean"] - base_mean
        row[f"{metric}_rel_diff"] = row[f"{metric}_diff"] / abs(base_mean) if base_mean else math.nan
        if key == base_key:
            row.update(t_statistic=math.nan, p_value=math.nan, verdict="baseline")
        else:
            test = stats.welch(members[column].tolist(), reference, metric, alpha)
            row.update(t_statistic=test.statistic, p_value=test.p_value, verdict=test.verdict)
        rows.append(row)
    groups = pd.DataFrame(rows)
    return groups.sort_values(f"{metric}_mean", ascending=_better_first(metric), kind="stable").reset_index(drop=True)


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


# ---- presentation --------------------------------------------------------------------------

def _number(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.5g}"


def _signed(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:+.4g}"


def _percent(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:+.1%}"


def _p(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.2g}"


def group_view(comparison: Comparison) -> pd.DataFrame:
    """The seed-group table as text cells, for the terminal and Markdown."""
    m, g = comparison.metric, comparison.groups
    return pd.DataFrame(
        {
            "group": g["group"],
            "n": g["n"].astype(str),
            "seeds": g["seeds"],
            f"{m} mean ± sd": [_number(a) if pd.isna(b) else f"{_number(a)} ± {_number(b)}"
                               for a, b in zip(g[f"{m}_mean"], g[f"{m}_sd"])],
            "Δ mean": g[f"{m}_diff"].map(_signed),
            "Δ%": g[f"{m}_rel_diff"].map(_percent),
            "p (Welch)": g["p_value"].map(_p),
            "verdict": g["verdict"],
            "test_skill mean": g["test_skill_mean"].map(_number),
        }
    )


def run_view(comparison: Comparison) -> pd.DataFrame:
    """The per-run table as text cells: the compared metric with Δ and Δ%, then the test metrics."""
    m, r = comparison.metric, comparison.runs
    view = pd.DataFrame(
        {
            "run": r["run_name"].astype(str) + r["baseline_run"].map({True: " *", False: ""}),
            "run_id": r["run_id"].str[:8],
            "group": r["group"],
            "seed": r["seed"].fillna("—").astype(str),
            m: r[m].map(_number),
            "Δ": r[f"{m}_diff"].map(_signed),
            "Δ%": r[f"{m}_rel_diff"].map(_percent),
        }
    )
    for name in RUN_TABLE_METRICS:
        if name != m:
            view[name] = r[name].map(_number)
            if not name.startswith("naive") and name != "test_skill":
                view[f"{name} Δ%"] = r[f"{name}_rel_diff"].map(_percent)
    return view


def explanation(comparison: Comparison) -> str:
    return (
        f"Groups: runs that differ only in trainer.seed. Test: Welch's t-test (two-sided, unequal "
        f"variances) of {comparison.metric} across seeds, each group vs the baseline's group; "
        f"'better'/'worse' when p < {comparison.alpha:g}, else 'no evidence'. p-values are not corrected "
        f"for testing many groups. test_skill = 1 - test_rmse / naive_test_rmse (naive: tomorrow = today; "
        f"> 0 beats it)."
    )


def header(comparison: Comparison) -> str:
    base = comparison.runs[comparison.runs["baseline_run"]].iloc[0]
    return (
        f"Experiment {comparison.experiment!r} ({comparison.store}), {comparison.selection}: "
        f"{_count(len(comparison.runs), 'run')} in {_count(len(comparison.groups), 'group')}. Baseline run * = "
        f"{base['run_name']} {base['run_id']} (seed {base['seed']}); sorted by {comparison.metric}."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render_text(comparison: Comparison) -> str:
    parts = [
        header(comparison),
        "",
        f"Seed groups ({comparison.metric}; Δ vs the baseline group's mean):",
        group_view(comparison).to_string(index=False),
        "",
        f"Runs ({comparison.metric}; Δ vs baseline run {comparison.baseline_run_id[:8]}):",
        run_view(comparison).to_string(index=False),
        "",
        explanation(comparison),
        *comparison.notes,
    ]
    return "\n".join(parts)


def markdown_table(table: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def render_markdown(comparison: Comparison) -> str:
    return "\n".join(
        [
            f"# Comparison with the baseline: {comparison.experiment}",
            "",
            header(comparison),
            "",
            f"## Seed groups ({comparison.metric})",
            "",
            markdown_table(group_view(comparison)),
            "",
            f"## Runs (Δ vs baseline run `{comparison.baseline_run_id}`)",
            "",
            markdown_table(run_view(comparison)),
            "",
            explanation(comparison),
            "",
            *[f"- {note}" for note in comparison.notes],
            "",
            "All final metrics with their differences: `runs.csv`, `groups.csv`. Chart: `chart.png`.",
            "",
        ]
    )


def plot(comparison: Comparison, path: Path) -> None:
    """Per group: mean ± sd of the metric and of test_skill, each run as a dot, baseline marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups, runs, m = comparison.groups, comparison.runs, comparison.metric
    colors = {"baseline": "grey", "better": "tab:green", "worse": "tab:red"}
    y = range(len(groups))
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.5 + 0.45 * len(groups)), sharey=True)
    for ax, name in zip(axes, (m, "test_skill")):
        ax.barh(list(y), groups[f"{name}_mean"], xerr=groups[f"{name}_sd"].fillna(0),
                color=[colors.get(v, "tab:blue") for v in groups["verdict"]], alpha=0.6, capsize=3)
        for i, group in enumerate(groups["group"]):
            values = runs.loc[runs["group"] == group, name]
            ax.scatter(values, [i] * len(values), color="black", s=12, zorder=3)
        base_mean = groups.loc[groups["baseline_group"], f"{name}_mean"]
        if not base_mean.empty:
            ax.axvline(base_mean.iloc[0], color="grey", linestyle="--", linewidth=1, label="baseline mean")
        if name == "test_skill":
            ax.axvline(0, color="tab:orange", linewidth=1, label="naive forecast")
        ax.set(xlabel=f"{name} (mean ± sd over seeds; dots: runs)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_yticks(list(y), [f"{g} [{v}]" for g, v in zip(groups["group"], groups["verdict"].str.split(" (", regex=False).str[0])])
    axes[0].invert_yaxis()
    fig.suptitle(f"{comparison.experiment}: groups vs baseline (Welch's t-test on {m}, alpha {comparison.alpha:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(comparison: Comparison, root: Path = REPORTS_DIR) -> Path:
    """runs.csv, groups.csv, report.md and chart.png in a new `root/<timestamp>/` folder."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    folder, n = root / stamp, 1
    while folder.exists():  # two compares within one second
        n += 1
        folder = root / f"{stamp}_{n}"
    folder.mkdir(parents=True)
    comparison.runs.to_csv(folder / "runs.csv", index=False)
    comparison.groups.to_csv(folder / "groups.csv", index=False)
    (folder / "report.md").write_text(render_markdown(comparison), encoding="utf-8")
    plot(comparison, folder / "chart.png")
    return folder


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmlab compare",
        description="Finished runs against the baseline, with seed variance (Welch's t-test).",
        epilog=f"Train variants with several seeds first: {TRAIN_SEEDS}",
    )
    parser.add_argument("--experiment", "-e", help="MLflow experiment (default: the one lstmlab train logs to)")
    parser.add_argument("--baseline", metavar="RUN_ID", help="baseline run, its id or a unique prefix (default: the latest run tagged baseline=true)")
    parser.add_argument("--sweep", metavar="RUN_ID|STUDY", help="only the trials of one sweep: its parent run id or study name")
    parser.add_argument("--metric", default="val_rmse", choices=FINAL_METRICS, help="sort and test on this metric (default: val_rmse)")
    parser.add_argument("--filter", dest="filter_string", metavar="MLFLOW_FILTER",
                        help="MLflow filter string, e.g. \"params.data.lookback = '60'\"")
    parser.add_argument("--alpha", type=float, default=stats.ALPHA, help="significance level (default: 0.05)")
    options = parser.parse_args(args)
    use_current_store()
    comparison = compare(
        experiment=options.experiment,
        baseline=options.baseline,
        sweep=options.sweep,
        metric=options.metric,
        filter_string=options.filter_string,
        alpha=options.alpha,
    )
    print(render_text(comparison))
    folder = write_report(comparison)
    print(f"\nReport: {folder}/ (runs.csv, groups.csv, report.md, chart.png)")
    return 0
