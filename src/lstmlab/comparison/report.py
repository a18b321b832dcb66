"""The report of a comparison: runs.csv, groups.csv, report.md and chart.png in a folder, and the
same files in an MLflow run (tagged `lstmlab.report=true`) beside the runs it compared.

The folder is written whole or not at all: its files go into a hidden folder beside it, renamed
into place once all four are written. A full disk or a folder that cannot be written is one
line, and leaves neither a half folder nor an empty runs.csv.
"""

from __future__ import annotations

import math
import os
import shutil
from datetime import datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH as TAG_LIMIT  # MLflow refuses longer tag values

from lstmlab.comparison.chart import plot
from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.forecasters import mcs_groups
from lstmlab.comparison.render import naive_line, render_markdown
from lstmlab.comparison.verdict import verdict_head
from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import REPORT_TAG
from lstmlab.paths import REPORTS_DIR

STAMP = "%Y-%m-%d_%H-%M-%S"
MORE = "\n\n… the whole report is the run's report.md artifact."


def write_report(comparison: Comparison, root: Path = REPORTS_DIR) -> tuple[Path, str]:
    """runs.csv, groups.csv, report.md and chart.png in a new `root/<timestamp>/` folder; the
    folder and the report's Markdown."""
    markdown = render_markdown(comparison)
    stamp = datetime.now().strftime(STAMP)
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = root / f".{stamp}-{os.getpid()}-writing"
        scratch.mkdir()
        try:
            comparison.runs.to_csv(scratch / "runs.csv", index=False)
            comparison.groups.to_csv(scratch / "groups.csv", index=False)
            (scratch / "report.md").write_text(markdown, encoding="utf-8")
            plot(comparison, scratch / "chart.png")
            folder = _rename_free(scratch, root, stamp)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # gone already when renamed
    except OSError as error:
        raise LstmlabError(f"cannot write the report into {root}: {first_line(error)} (no report written)") from None
    return folder, markdown


def _rename_free(scratch: Path, root: Path, stamp: str) -> Path:
    """`scratch` renamed to root/<stamp> (or <stamp>_2, … when two compares share a second)."""
    n = 1
    while True:
        folder = root / (stamp if n == 1 else f"{stamp}_{n}")
        try:
            os.rename(scratch, folder)  # fails when the name is taken by a folder with files
            return folder
        except OSError:
            if not folder.exists():
                raise
            n += 1


def description(markdown: str) -> str:
    """The run's description (shown on its page in the UI): the report, cut to what a tag holds."""
    return markdown if len(markdown) <= TAG_LIMIT else markdown[: TAG_LIMIT - len(MORE)] + MORE


def log_report_run(comparison: Comparison, folder: Path, markdown: str) -> str:
    """A run named `compare-<timestamp>` in the compared experiment holding the report's files
    (`folder` and `markdown` from write_report).

    Its tags say what it compared, so the MLflow UI shows the verdict beside the runs; the
    `lstmlab.report` tag keeps it out of every later compare. It ends FINISHED, or FAILED if the
    upload fails: never RUNNING.
    """
    client = MlflowClient()
    groups = comparison.groups
    verdicts = groups.loc[~groups["baseline_group"]].assign(head=lambda table: table["verdict"].map(verdict_head))
    named = lambda verdict: ", ".join(verdicts.loc[verdicts["head"] == verdict, "group"]) or "none"  # noqa: E731
    per_group = lambda column, text: ", ".join(  # noqa: E731
        f"{group} {text(value)}" for group, value in zip(verdicts["group"], verdicts[column]) if not math.isnan(value)) or "none"
    tags = {
        REPORT_TAG: "true",
        "compare.baseline_run": comparison.baseline_run_id,
        "compare.metric": comparison.metric,
        "compare.alpha": f"{comparison.alpha:g}",
        "compare.data": comparison.data,
        "compare.evaluation": comparison.evaluation,
        "compare.selection": comparison.selection,
        "compare.better": named("better"),
        "compare.worse": named("worse"),
        "compare.equivalent": named("equivalent"),
        "compare.margin": f"{comparison.margin:g}",
        "compare.mde": per_group("mde", lambda v: f"{v:.1%}"),
        "compare.effect": f"{comparison.effect:g}",
        "compare.seeds_needed": per_group("seeds_needed", lambda v: f"{int(v)}"),
        "compare.failed": ", ".join(f"{group} {failed}" for group, failed in zip(groups["group"], groups["failed"])
                                    if not failed.startswith("0/")) or "none",
        "compare.naive": naive_line(comparison),
        "compare.mcs": mcs_groups(comparison.models),
        "compare.spa_p": "not computed" if comparison.models is None or math.isnan(comparison.models.spa_p)
        else f"{comparison.models.spa_p:.4g}",
        "mlflow.note.content": description(markdown),
    }
    tags = {name: value[:TAG_LIMIT] for name, value in tags.items()}  # a long list of groups, a long filter
    run = client.create_run(comparison.experiment_id, run_name=f"compare-{folder.name}", tags=tags)
    status = "FAILED"
    try:
        client.log_artifacts(run.info.run_id, str(folder))
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id
