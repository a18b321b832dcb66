"""The comparison chart: per group the metric (seeds), the test RMSE change and test_skill.

Labels never overlap: group labels are wrapped, the figure grows with the groups and the
longest label, and matplotlib's constrained layout places the titles; tests measure the text
boxes of the drawn figure. With many groups (a large study) it draws at most CHART_GROUPS: the
baseline, the groups judged `better`, then in turn the best and the worst of the rest by the
sorted metric; its title says how many are left to groups.csv. So it stays readable, and quick
to draw.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.verdict import verdict_head
from lstmlab.plural import count

LABEL_WIDTH = 28  # characters per line of a group label (a longer word stays whole; the figure widens)
TITLE_SIZE = 12  # points
CHART_GROUPS = 30  # groups drawn at most


def drawn_groups(groups: pd.DataFrame, most: int = CHART_GROUPS) -> pd.DataFrame:
    """The groups to draw, in the table's order: all when they fit; else the baseline, the groups
    judged better, then in turn the best and the worst of the rest."""
    if len(groups) <= most:
        return groups
    chosen = list(groups.index[groups["baseline_group"] | groups["verdict"].eq("better")][:most])
    rest = [i for i in groups.index if i not in set(chosen)]
    for turn in range(min(most - len(chosen), len(rest))):  # best, worst, next best, ...
        chosen.append(rest.pop(-1 if turn % 2 else 0))
    return groups.loc[sorted(chosen)]


def figure(comparison: Comparison):
    """The matplotlib figure, on an Agg canvas of its own (no pyplot: no global backend, no figure
    manager to close); `plot` saves it (drawing it once: each draw of a tall figure costs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups, runs, m = drawn_groups(comparison.groups), comparison.runs, comparison.metric
    colors = {"baseline": "grey", "better": "tab:green", "worse": "tab:red", "equivalent": "tab:purple"}
    verdicts = groups["verdict"].map(verdict_head)
    labels = [textwrap.fill(f"{g} [{v}]", LABEL_WIDTH, break_long_words=False) for g, v in zip(groups["group"], verdicts)]
    lines = sum(label.count("\n") + 1 for label in labels)
    y = list(range(len(groups)))
    longest = max(len(line) for label in labels for line in label.splitlines())
    fig = Figure(figsize=(12 + 0.07 * longest, 2.2 + 0.3 * lines + 0.15 * len(groups)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    bar_colors = [colors.get(v, "tab:blue") for v in verdicts]
    for ax, name in zip((axes[0], axes[2]), (m, "test_skill")):
        ax.barh(y, groups[f"{name}_mean"], xerr=groups[f"{name}_sd"].fillna(0), color=bar_colors, alpha=0.6, capsize=3)
        drawn = runs[runs["group"].isin(groups["group"])]  # one scatter for every run: quick with thousands
        ax.scatter(drawn[name], drawn["group"].map(dict(zip(groups["group"], y))), color="black", s=12, zorder=3)
        base_mean = groups.loc[groups["baseline_group"], f"{name}_mean"]
        if not base_mean.empty:
            ax.axvline(base_mean.iloc[0], color="grey", linestyle="--", linewidth=1, label="baseline")
        ax.set_xlabel(f"{name}\n(mean ± sd over seeds; dots: runs)")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # long labels (-0.0125) must not run into each other
    axes[2].axvline(0, color="tab:orange", linewidth=1, label="naive forecast")
    axes[2].use_sticky_edges = False  # bars end at 0, where the naive line is: keep it off the frame
    axes[2].margins(x=0.05)
    change = groups["rmse_change"] * 100
    errors = [(change - groups["rmse_change_low"] * 100).fillna(0), (groups["rmse_change_high"] * 100 - change).fillna(0)]
    axes[1].errorbar(change, y, xerr=errors, fmt="o", color="black", ecolor="grey", capsize=3)
    axes[1].axvline(0, color="grey", linestyle="--", linewidth=1, label="baseline")
    axes[1].set_xlabel("test RMSE change vs baseline, %\n(geometric means over seeds; Welch's 95% t-interval)")
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    # One legend for the three panels, below them: inside an axes it may cover a bar.
    handles = {label: handle for ax in (axes[1], axes[2]) for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    axes[0].set_yticks(y, labels)
    axes[0].set_ylim(len(groups) - 0.5, -0.5)  # first group on top; no margin that grows with the groups
    hidden = len(comparison.groups) - len(groups)  # drawn: baseline, better, best and worst
    fig.suptitle(textwrap.fill(
        f"{comparison.experiment}: groups vs baseline — data {comparison.data}, {comparison.evaluation}; "
        f"verdict: log test RMSE across seeds, Welch's t, Holm, alpha {comparison.alpha:g}"
        + (f"; {len(groups)} of {len(comparison.groups)} groups drawn (baseline, 'better', best and worst), "
           f"{count(hidden, 'group')} more in groups.csv" if hidden else ""),
        int(fig.get_figwidth() * 72 / (TITLE_SIZE * 0.62))), fontsize=TITLE_SIZE)  # characters that fit the width
    return fig


def plot(comparison: Comparison, path: Path) -> None:
    figure(comparison).savefig(path, dpi=100)
