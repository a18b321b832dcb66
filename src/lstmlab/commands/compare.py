"""`lstmlab compare [OPTIONS]`: printing; the work is lstmlab.comparison, the arguments
commands.parsers.compare (read before this module and its libraries are imported)."""

from __future__ import annotations

import argparse

from lstmlab import interrupts
from lstmlab.comparison.compare import compare
from lstmlab.comparison.render import render_text
from lstmlab.comparison.report import log_report_run, write_report
from lstmlab.tracking.open import use_current_store


def main(options: argparse.Namespace) -> int:
    with interrupts.at_once():  # reading runs and computing: a Ctrl-C stops it at once
        use_current_store()
        comparison = compare(
            experiment=options.experiment,
            baseline=options.baseline,
            sweep=options.sweep,
            metric=options.metric,
            filter_string=options.filter_string,
            alpha=options.alpha,
            data=options.data,
            include_all=options.include_all,
            margin=options.margin,
            effect=options.effect,
            confirm=options.confirm,
        )
        text = render_text(comparison)
    print(text)
    # The report: files written whole or not at all, then a run; a Ctrl-C waits for them.
    folder, markdown = write_report(comparison)
    run_id = log_report_run(comparison, folder, markdown)
    print(f"\nReport: {folder}/ (runs.csv, groups.csv, report.md, chart.png)")
    print(f"In MLflow: run compare-{folder.name} ({run_id}) in experiment {comparison.experiment!r}")
    return 0
