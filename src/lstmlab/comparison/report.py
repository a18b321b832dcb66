"""The report of a comparison: runs.csv, groups.csv, report.md and chart.png in a folder, and the
same files in an MLflow run (tagged `lstmlab.report=true`) beside the runs it compared."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH as TAG_LIMIT  # MLflow refuses longer tag values

from lstmlab.comparison.chart import plot
from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.render import naive_line, render_markdown
from lstmlab.names import REPORT_TAG
from lstmlab.paths import REPORTS_DIR

STAMP = "%Y-%m-%d_%H-%M-%S"
MORE = "\n\n… the whole report is the run's report.md artifact."


def write_report(comparison: Comparison, root: Path = REPORTS_DIR) -> tuple[Path, str]:
    """runs.csv, groups.csv, report.md and chart.png in a new `root/<timestamp>/` folder; the
    folder and the report's Markdown."""
    stamp = datetime.now().strftime(STAMP)
    folder, n = root / stamp, 1
    while folder.exists():  # two compares within one second
        n += 1
        folder = root / f"{stamp}_{n}"
    folder.mkdir(parents=True)
    comparison.runs.to_csv(folder / "runs.csv", index=False)
    comparison.groups.to_csv(folder / "groups.csv", index=False)
    markdown = render_markdown(comparison)
    (folder / "report.md").write_text(markdown, encoding="utf-8")
    plot(comparison, folder / "chart.png")
    return folder, markdown


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
    verdicts = groups.loc[~groups["baseline_group"], ["group", "verdict"]]
    tags = {
        REPORT_TAG: "true",
        "compare.baseline_run": comparison.baseline_run_id,
        "compare.metric": comparison.metric,
        "compare.alpha": f"{comparison.alpha:g}",
        "compare.data": comparison.data,
        "compare.evaluation": comparison.evaluation,
        "compare.selection": comparison.selection,
        "compare.better": ", ".join(verdicts.loc[verdicts["verdict"] == "better", "group"]) or "none",
        "compare.worse": ", ".join(verdicts.loc[verdicts["verdict"] == "worse", "group"]) or "none",
        "compare.naive": naive_line(comparison),
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
