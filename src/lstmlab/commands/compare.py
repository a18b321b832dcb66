"""`lstmlab compare [OPTIONS]`: arguments and printing; the work is lstmlab.comparison.

The arguments are parsed before the comparison wing (MLflow, pandas, scipy) is imported, so
`--help` and a usage error answer at once.
"""

from __future__ import annotations

import argparse

from lstmlab.comparison.defaults import ALPHA, EFFECT, MARGIN, TRAIN_SEEDS
from lstmlab.names import FINAL_METRICS


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab compare",
        description="Runs against the baseline, like with like: on the baseline's data and evaluation. "
        "Each seed group (a configuration) gets its test RMSE relative to the baseline's (geometric means over "
        "seeds) with a 95% interval (Welch's t on log test RMSE) and a verdict from the same test, Holm-adjusted: "
        "better, worse, equivalent (the interval inside ±margin) or no evidence, beside the smallest effect its "
        "seeds could detect (mde), the seeds a given effect needs, and the chance a fresh run beats a fresh "
        "baseline run. Failed seeds count. The configurations and the trained models also get model confidence "
        "sets, and the trained models an SPA test against naive (arch), which speak of those days.",
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
    parser.add_argument("--confirm", action="store_true",
                        help="with --sweep: only its confirm runs (hydra.sweeper.confirm: the top trials and the baseline "
                             "retrained on fresh seeds) against its confirm baseline: the sweep's own verdict")
    parser.add_argument("--metric", default="val_rmse", choices=FINAL_METRICS,
                        help="sort the tables by this metric (default: val_rmse); the verdict always reads test_rmse")
    parser.add_argument("--filter", dest="filter_string", metavar="MLFLOW_FILTER",
                        help="MLflow filter string, e.g. \"params.data.lookback = '60'\"")
    parser.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level (default: {ALPHA})")
    parser.add_argument("--effect", type=float, default=EFFECT, metavar="CHANGE",
                        help=f"the change of test RMSE you care about, for seeds_needed (default: {EFFECT}, i.e. 5%%)")
    parser.add_argument("--margin", type=float, default=MARGIN, metavar="CHANGE",
                        help=f"'equivalent' when the 95%% interval lies within ±margin (default: {MARGIN}, i.e. ±5%%)")
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
