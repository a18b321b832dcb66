"""A comparison as text: terminal tables that fit the terminal, and the full Markdown report.

The terminal shows every group, and of the runs the best and the worst (RUNS_SHOWN) with a count
of the rest: a study of 2,000 runs is one screen of groups, not 2,000 lines; runs.csv and
report.md hold every run. Lines fit the terminal's width (`COLUMNS` when set, at least
MIN_WIDTH; WIDTH when the output is no terminal): tables drop their least needed columns first.
"""

from __future__ import annotations

import shutil
import textwrap

import pandas as pd

from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.forecasters import describe
from lstmlab.comparison.seeds import TESTED_METRIC
from lstmlab.comparison.verdict import verdict_head
from lstmlab.plural import count

WIDTH = 120  # the widest line when the output is not a terminal (a file, a pipe)
MIN_WIDTH = 80  # never narrower, whatever COLUMNS says
MAX_GROUP = 30  # characters of a group label in an 80-100-column terminal (a third of a wider one; full labels in the CSVs)
# Columns of the Markdown run table (every final metric is in runs.csv).
RUN_TABLE_METRICS = ("test_rmse", "test_mae", "test_skill", "naive_test_rmse")
RUNS_SHOWN = (10, 5)  # the terminal's best and worst runs when there are more than both
CHANGE = "test RMSE Δ [95% CI]"  # the effect's column: the change of the geometric mean over seeds


def width() -> int:
    """The terminal's width (shutil reads COLUMNS first), at least MIN_WIDTH; WIDTH for a file."""
    return max(MIN_WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def _number(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.5g}"


def _signed(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:+.4g}"


def _percent(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:+.1%}"


def _p(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.2g}"


def _share(value: float) -> str:
    """'4.1%' (one decimal below 100 %, none above): an effect size or a probability."""
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.1%}" if abs(value) < 1 else f"{value:.0%}"


def _seeds(value: float) -> str:
    return "—" if value is None or pd.isna(value) else f"{int(value):,}"


def _interval(estimate: float, low: float, high: float) -> str:
    """'+52.6% [+29.4, +85.7]': percent, one decimal below ±100 %, none above."""
    if pd.isna(estimate):
        return "—"
    number = lambda v: f"{100 * v:+.1f}" if abs(v) < 1 else f"{100 * v:+.0f}"  # noqa: E731
    if pd.isna(low) or pd.isna(high):  # a group of one seed: no seed noise, no interval
        return f"{number(estimate)}% [—]"
    return f"{number(estimate)}% [{number(low)}, {number(high)}]"


def _clip(text: str, width: int = MAX_GROUP) -> str:
    """At most `width` characters, cut in the middle: labels sharing a long start differ at the end."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def label_width() -> int:
    """Characters a group label may take: MAX_GROUP, or a third of a wider terminal."""
    return max(MAX_GROUP, width() // 3)


def short_labels(labels: pd.Series) -> pd.Series:
    """Group labels for the terminal: clipped to label_width(), or wider where clipping would merge two."""
    for chars in range(label_width(), max(map(len, labels), default=0) + 1):
        clipped = pd.Series([_clip(text, chars) for text in labels], index=labels.index)
        if clipped.nunique() == labels.nunique():
            return clipped
    return labels


def _mean_sd(mean: float, sd: float) -> str:
    return _number(mean) if pd.isna(sd) else f"{_number(mean)} ± {sd:.3g}"


def _in_mcs(value: object) -> str:
    return "—" if value is None or pd.isna(value) else ("yes" if value else "no")


def group_view(comparison: Comparison) -> pd.DataFrame:
    """Every group column as text cells, for the Markdown report."""
    m, g = comparison.metric, comparison.groups
    view = pd.DataFrame(
        {
            "group": g["group"],
            "n": g["n"].astype(str),
            "failed": g["failed"],
            "seeds": g["seeds"],
            f"{m} mean ± sd": [_mean_sd(a, b) for a, b in zip(g[f"{m}_mean"], g[f"{m}_sd"])],
            "Δ mean": g[f"{m}_diff"].map(_signed),
            "Δ%": g[f"{m}_rel_diff"].map(_percent),
            f"{TESTED_METRIC} mean ± sd": [_mean_sd(a, b) for a, b in
                                           zip(g[f"{TESTED_METRIC}_mean"], g[f"{TESTED_METRIC}_sd"])],
            CHANGE: [_interval(*v) for v in zip(g["rmse_change"], g["rmse_change_low"], g["rmse_change_high"])],
            "p": g["p_value"].map(_p),
            "p (Holm)": g["welch_p_holm"].map(_p),
            "mde": g["mde"].map(_share),
            f"seeds for ±{comparison.effect:.0%}": g["seeds_needed"].map(_seeds),
            "p_beats": g["p_beats"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
            "verdict": g["verdict"],
            "in MCS": g["in_mcs"].map(_in_mcs),
            "test_skill mean": g["test_skill_mean"].map(_number),
        }
    )
    return view.loc[:, ~view.columns.duplicated()]  # --metric test_rmse: its column once


def terminal_group_view(comparison: Comparison) -> tuple[pd.DataFrame, list[str]]:
    """The group table for a terminal (Holm-adjusted p only, short verdicts, the most needed
    columns first) and its footnotes."""
    m, g = comparison.metric, comparison.groups
    reasons: dict[str, int] = {}  # one footnote per reason, however many groups share it
    short = []
    for verdict in g["verdict"]:
        head = verdict_head(verdict)
        if head != verdict:
            head = f"{head} [{reasons.setdefault(verdict[len(head) + 2:-1], len(reasons) + 1)}]"
        short.append(head)
    footnotes = [f"  [{n}] {reason}" for reason, n in reasons.items()]
    full = group_view(comparison)
    view = pd.DataFrame({
        "group": short_labels(g["group"]),
        "n": [n if failed.startswith("0/") else f"{n} ({failed.split('/')[0]} failed)"
              for n, failed in zip(full["n"], g["failed"])],
        CHANGE: full[CHANGE],
        "verdict": short,
        "p*": full["p (Holm)"],
        "mde": full["mde"],
        "p_beats": full["p_beats"],
        f"{m} mean ± sd": full[f"{m} mean ± sd"],
        "skill": g["test_skill_mean"].map(lambda v: "—" if pd.isna(v) else f"{v:+.3f}"),
    })
    return view, footnotes


def run_view(comparison: Comparison) -> pd.DataFrame:
    """The per-run table as text cells: the compared metric with Δ and Δ%, then the test metrics."""
    m, r = comparison.metric, comparison.runs
    view = pd.DataFrame(
        {
            "run": r["run_name"].astype(str).map(lambda s: _clip(s, 20)) + r["baseline_run"].map({True: " *", False: ""}),
            "run_id": r["run_id"].str[:8],
            "group": r["group"].map(dict(zip(comparison.groups["group"], short_labels(comparison.groups["group"])))),
            "seed": r["seed"].fillna("—").astype(str),
            m: [_number(v) if status == "FINISHED" else status.lower()
                for v, status in zip(r[m], r["status"])],
            "Δ": r[f"{m}_diff"].map(_signed),
            "Δ%": r[f"{m}_rel_diff"].map(_percent),
            "in MCS": r["in_mcs"].map(_in_mcs),
        }
    )
    for name in RUN_TABLE_METRICS:
        if name != m:
            view[name] = r[name].map(_number)
            if not name.startswith("naive") and name != "test_skill":
                view[f"{name} Δ%"] = r[f"{name}_rel_diff"].map(_percent)
    return view


def capped(view: pd.DataFrame, shown: tuple[int, int] = RUNS_SHOWN) -> tuple[pd.DataFrame, str | None]:
    """The best and the worst rows of a sorted table, and a line counting the rest (None: all shown)."""
    best, worst = shown
    if len(view) <= best + worst:
        return view, None
    rest = len(view) - best - worst
    gap = pd.DataFrame([["…"] * view.shape[1]], columns=view.columns)
    return (pd.concat([view.head(best), gap, view.tail(worst)], ignore_index=True),
            f"  … {count(rest, 'more run')} between the best {best} and the worst {worst}: all in runs.csv")


def fit(view: pd.DataFrame, keep: int, chars: int | None = None) -> str:
    """The table as text, dropping columns from the right (never the first `keep`) until it fits
    `chars` (the terminal's width)."""
    chars = chars or width()
    while True:
        text = view.to_string(index=False)
        if max(map(len, text.splitlines())) <= chars or view.shape[1] <= keep:
            return text
        view = view.iloc[:, :-1]


def explanation(comparison: Comparison) -> str:
    return (
        "Groups: runs that differ only in trainer.seed (a configuration, replicated by its seeds). "
        f"{CHANGE}: the group's test RMSE relative to the baseline group's, as geometric means over seeds, "
        "with Welch's 95% t-interval on log test RMSE; p*: the same t-test, Holm-adjusted over the groups of "
        f"this report. 'better'/'worse' when p* < {comparison.alpha:g}; 'equivalent' when the interval lies "
        f"inside ±{comparison.margin:.0%}; else 'no evidence'. mde: the smallest change these seeds detect 80% "
        f"of the time (at Holm's strictest level); p_beats: the chance that a fresh run of the group has a lower "
        f"test RMSE than a fresh baseline run. Failed seeds (FAILED, KILLED, a test RMSE that is no number) count "
        f"in their group's n. Sorted by {comparison.metric}. skill = 1 - test_rmse / naive_test_rmse (naive: "
        "tomorrow = today; > 0 beats it)."
    )


def strength_line(comparison: Comparison) -> str:
    """How strong the answers are: the smallest detectable effects and the seeds a --effect needs."""
    g = comparison.groups
    tested = g[g["mde"].notna()]
    if tested.empty:
        return "Strength: no group has two finished seeds on both sides, so no effect could be detected."
    low, high = tested["mde"].min(), tested["mde"].max()
    span = _share(low) if low == high else f"{_share(low)}–{_share(high)}"
    needed = tested["seeds_needed"].dropna()
    seeds_needed = (f"; a change of {comparison.effect:.0%} needs {_seeds(needed.min())}"
                    + ("" if needed.min() == needed.max() else f"–{_seeds(needed.max())}")
                    + " seeds per group" if not needed.empty else "")
    equivalent = g.loc[g["verdict"].map(verdict_head) == "equivalent", "group"].tolist()
    return (f"Strength: with these seeds the smallest change of test RMSE found 80% of the time is {span} "
            f"(mde){seeds_needed}."
            + (f" Equivalent to the baseline within ±{comparison.margin:.0%}: {', '.join(equivalent)}." if equivalent else ""))


def header(comparison: Comparison) -> str:
    base = comparison.runs[comparison.runs["baseline_run"]].iloc[0]
    failed = int((comparison.runs["status"] != "FINISHED").sum())
    return (
        f"Experiment {comparison.experiment!r} ({comparison.store}), {comparison.selection}: "
        f"{count(len(comparison.runs), 'run')}{f' ({failed} failed)' if failed else ''} in "
        f"{count(len(comparison.groups), 'group')}. Data: {comparison.data}. Evaluation: {comparison.evaluation}. "
        f"Baseline run * = {base['run_name']} {base['run_id']} (seed {base['seed']}); sorted by {comparison.metric}."
    )


def naive_line(comparison: Comparison) -> str:
    """Whether any group beat the naive forecast (mean test_skill > 0)."""
    skill = comparison.groups.set_index("group")["test_skill_mean"].dropna()
    if skill.empty:
        return "Naive forecast: no test_skill recorded."
    winners = skill[skill > 0].sort_values(ascending=False)
    if winners.empty:
        return (f"No group beat the naive forecast (tomorrow = today): best mean test_skill "
                f"{skill.max():+.3f} ({skill.idxmax()}).")
    listed = ", ".join(f"{name} ({value:+.3f})" for name, value in winners.items())
    return f"Groups that beat the naive forecast on average (test_skill > 0): {listed}."


def render_text(comparison: Comparison) -> str:
    chars = width()
    wrap = lambda text: textwrap.fill(text, chars, break_on_hyphens=False)  # noqa: E731
    groups, footnotes = terminal_group_view(comparison)
    terminal_runs = run_view(comparison).drop(columns=["Δ", "test_mae", "test_mae Δ%", "naive_test_rmse"], errors="ignore")
    terminal_runs, rest = capped(terminal_runs)
    parts = [
        wrap(header(comparison)),
        "",
        f"Seed groups (sorted by {comparison.metric}; the verdict on {TESTED_METRIC}, p* Holm-adjusted):",
        fit(groups, keep=4, chars=chars),
        *(wrap(note) for note in footnotes),
        wrap(strength_line(comparison)),
        wrap(naive_line(comparison)),
        *map(wrap, describe(comparison.runs, comparison.models, comparison.alpha)),
        "",
        f"Runs ({comparison.metric}; Δ vs baseline run {comparison.baseline_run_id[:8]}):",
        fit(terminal_runs, keep=5, chars=chars),
        *([rest] if rest else []),
        "",
        wrap(explanation(comparison)),
        *map(wrap, comparison.notes),
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
            f"- **Data**: {comparison.data}",
            f"- **Evaluation**: {comparison.evaluation}",
            "- **Seeds per group** (finished; failed): " + ", ".join(
                f"{row.group} {row.n}; {row.failed}" for row in comparison.groups.itertuples()),
            f"- **Strength**: {strength_line(comparison).removeprefix('Strength: ')}",
            f"- **Naive forecast**: {naive_line(comparison)}",
            *[f"- {line}" for line in describe(comparison.runs, comparison.models, comparison.alpha)],
            "",
            f"## Seed groups (sorted by {comparison.metric}; the verdict on {TESTED_METRIC})",
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
