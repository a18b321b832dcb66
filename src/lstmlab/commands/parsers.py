"""The arguments of every `lstmlab` subcommand that argparse reads (all but train, which Hydra
reads, and ui, which passes them to `mlflow ui`).

lstmlab.cli parses a command line with these before it imports the command's module, which
imports the command's libraries (MLflow, pandas, scipy) at its top: `--help` and a usage error
answer at once. The completion's query (completion_query) reads the same parsers. Only light
modules are imported here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from lstmlab.comparison.defaults import ALPHA, EFFECT, MARGIN, TRAIN_SEEDS
from lstmlab.names import FINAL_METRICS, REL_TOLERANCE

EXIT_DIFFERENT = 1  # `rerun --check`: a final metric differs
SHELLS = ("bash", "zsh", "fish")  # `completion`


def compare() -> argparse.ArgumentParser:
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


def rerun() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab rerun",
        description="Train a logged run again from its config.yaml; print each final metric old vs new.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's id (or a unique prefix of 8+ characters)")
    parser.add_argument("--check", action="store_true",
                        help=f"exit {EXIT_DIFFERENT} when a final metric (train_seconds excluded) differs beyond the tolerance")
    parser.add_argument("--tolerance", type=float, default=REL_TOLERANCE,
                        help=f"relative tolerance of --check (default {REL_TOLERANCE:g}: identical up to float rounding)")
    return parser


def forecast() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab forecast",
        description="Next-step price from a run's logged model, beside the naive forecast.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's id (or a unique prefix of 8+ characters)")
    parser.add_argument("--data", metavar="PATH", help="a CSV with the run's columns (default: the run's own data)")
    return parser


def evidence() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab evidence",
        description="A campaign's runs as plain text in the repository (DIR: campaign.yaml, runs.jsonl, "
        "artifacts/<run id>/), loaded back into any MLflow store: commit what finished, continue elsewhere.",
        epilog="The store is $MLFLOW_TRACKING_URI, else MLflow's default in the working directory.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="save|load|table")
    save = actions.add_parser("save", help="write the store's runs of the campaign's experiment to DIR (again: adds new ones)",
                              description="Write every ended run (FINISHED, FAILED, KILLED) of the experiment to DIR; "
                              "runs already there keep their lines byte for byte.")
    load = actions.add_parser("load", help="add DIR's runs to the store (those not there yet)",
                              description="Add every run of DIR not yet in the experiment of the current store, "
                              "with its times, status, params, tags, metric histories and text artifacts.")
    for action in (save, load):
        action.add_argument("folder", metavar="DIR", help="the campaign's folder, e.g. evidence/prices-50")
        action.add_argument("--experiment", "-e", metavar="NAME",
                            help="the store's experiment (default: the one campaign.yaml names; for a new DIR, "
                                 "the one lstmlab train logs to)")
    table = actions.add_parser("table", help="recompute the campaign's table from DIR alone",
                               description="Load DIR into a temporary store, compare with the options campaign.yaml "
                               "names, print the table docs/evidence.md shows and the MCS/SPA lines.")
    table.add_argument("folder", metavar="DIR", help="the campaign's folder, e.g. evidence/prices-50")
    return parser


def completion() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab completion",
        description="Print the tab completion script for the lstmlab command.",
        epilog='Install in the running shell: eval "$(lstmlab completion bash)" (or zsh); '
               "lstmlab completion fish | source. Put that line in ~/.bashrc, ~/.zshrc or "
               "~/.config/fish/config.fish to keep it.",
    )
    parser.add_argument("shell", choices=SHELLS)
    parser.add_argument("--uninstall", action="store_true", help="print the lines that remove it")
    parser.add_argument("--query", action="store_true",
                        help="used by the script: the words completing $COMP_LINE up to $COMP_POINT")
    return parser


PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "compare": compare, "rerun": rerun, "forecast": forecast, "evidence": evidence, "completion": completion,
}
