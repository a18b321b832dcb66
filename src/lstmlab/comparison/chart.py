"""The comparison chart: per group the metric and test_skill, mean ± sd over seeds, runs as dots."""

from __future__ import annotations

from pathlib import Path

from lstmlab.comparison.compare import Comparison


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
    verdicts = groups["verdict"].str.split(" (", regex=False).str[0]
    axes[0].set_yticks(list(y), [f"{g} [{v}]" for g, v in zip(groups["group"], verdicts)])
    axes[0].invert_yaxis()
    fig.suptitle(f"{comparison.experiment}: groups vs baseline (Welch's t-test on {m}, alpha {comparison.alpha:g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
