"""The report folder of a comparison: runs.csv, groups.csv, report.md and chart.png."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from lstmlab.comparison.chart import plot
from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.render import render_markdown
from lstmlab.paths import REPORTS_DIR


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
