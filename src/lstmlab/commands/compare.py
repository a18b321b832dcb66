"""`lstmlab compare [OPTIONS]`: arguments and printing; the work is lstmlab.comparison."""

from __future__ import annotations

import argparse

from lstmlab.comparison import stats
from lstmlab.comparison.compare import TRAIN_SEEDS, compare
from lstmlab.comparison.render import render_text
from lstmlab.comparison.report import write_report
from lstmlab.records.names import FINAL_METRICS
from lstmlab.records.store import use_current_store


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lstmlab compare",
        description="Finished runs against the baseline, with seed variance (Welch's t-test).",
        epilog=f"Train variants with several seeds first: {TRAIN_SEEDS}",
    )
    parser.add_argument("--experiment", "-e", help="MLflow experiment (default: the one lstmlab train logs to)")
    parser.add_argument("--baseline", metavar="RUN_ID",
                        help="baseline run, its id or a unique prefix (default: the latest run tagged baseline=true)")
    parser.add_argument("--sweep", metavar="RUN_ID|STUDY", help="only the trials of one sweep: its parent run id or study name")
    parser.add_argument("--metric", default="val_rmse", choices=FINAL_METRICS,
                        help="sort and test on this metric (default: val_rmse)")
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
