"""A comparison as text: the terminal tables and the Markdown report."""

from __future__ import annotations

import pandas as pd

from lstmlab.comparison.compare import Comparison, count

# Columns of the terminal / Markdown run table (every final metric is in runs.csv).
RUN_TABLE_METRICS = ("test_rmse", "test_mae", "test_skill", "naive_test_rmse")


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
        f"{count(len(comparison.runs), 'run')} in {count(len(comparison.groups), 'group')}. Baseline run * = "
        f"{base['run_name']} {base['run_id']} (seed {base['seed']}); sorted by {comparison.metric}."
    )



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
