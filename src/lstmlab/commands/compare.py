"""`lstmlab compare [OPTIONS]`: arguments and printing; the work is lstmlab.comparison.

The arguments are parsed before the comparison wing (MLflow, pandas, scipy) is imported, so
`--help` and a usage error answer at once.
"""

from __future__ import annotations

import argparse

from lstmlab.comparison.defaults import ALPHA, TRAIN_SEEDS
from lstmlab.names import FINAL_METRICS


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab compare",
        description="Finished runs against the baseline, like with like: on the baseline's data and evaluation. "
        "Each seed group gets a verdict on its configuration: Welch's t-test of test_rmse across seeds "
        "(Holm-adjusted) and the test RMSE change with a two-level bootstrap interval (seeds, then blocks of "
        "days) must agree. The trained models (each run) and the naive forecast also get a model confidence "
        "set and an SPA test (arch), which speak of those models on those days.",
        epilog=f"Train variants with several seeds first: {TRAIN_SEEDS}. The report is also logged as a run "
        "tagged lstmlab.report=true in the experiment.",
    )
    parser.add_argument("--experiment", "-e", help="MLflow experiment (default: the one lstmlab train logs to)")
    parser.add_argument("--baseline", metavar="RUN_ID",
                        help="baseline run, its id or a unique prefix (default: the latest run tagged baseline=true, "
                             "on --data when given)")
    parser.add_argument("--data", metavar="SHA_PREFIX|NAME",
                        help="runs on this data: a data_sha256 prefix, or its name in the MLflow UI (sp500, synthetic, "
                             "csv-<file stem>; a CSV's file name works too) (default: the baseline's data)")
    parser.add_argument("--all", dest="include_all", action="store_true",
                        help="keep runs on other data too (their groups get no verdict); the evaluation stays the baseline's")
    parser.add_argument("--sweep", metavar="RUN_ID|STUDY", help="only the trials of one sweep: its parent run id or study name")
    parser.add_argument("--metric", default="val_rmse", choices=FINAL_METRICS,
                        help="sort the tables by this metric (default: val_rmse); the verdict always reads test_rmse")
    parser.add_argument("--filter", dest="filter_string", metavar="MLFLOW_FILTER",
                        help="MLflow filter string, e.g. \"params.data.lookback = '60'\"")
    parser.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level (default: {ALPHA})")
    return parser


def main(args: list[str]) -> int:
    options = parser().parse_args(args)

    from lstmlab import interrupts

    with interrupts.at_once():  # reading runs and computing: a Ctrl-C stops it at once
        from lstmlab.comparison.compare import compare
        from lstmlab.comparison.render import render_text
        from lstmlab.comparison.report import log_report_run, write_report
        from lstmlab.tracking.open import use_current_store

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
        )
        text = render_text(comparison)
    print(text)
    # The report: files written whole or not at all, then a run; a Ctrl-C waits for them.
    folder, markdown = write_report(comparison)
    run_id = log_report_run(comparison, folder, markdown)
    print(f"\nReport: {folder}/ (runs.csv, groups.csv, report.md, chart.png)")
    print(f"In MLflow: run compare-{folder.name} ({run_id}) in experiment {comparison.experiment!r}")
    return 0
