"""How `lstmlab train` ends: a run's summary, a multirun job's line, a multirun's table of jobs.

Printing only: the numbers are read back from MLflow by records.summary. A job leaves its run
id in its Hydra output folder (JOB_FILE), so the table at the end of a multirun finds every
job's run under any launcher (in-process, joblib, a cluster sharing the folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lstmlab.commands.hydra_files import sweep_folder
from lstmlab.plural import count
from lstmlab.records.summary import RunSummary, summarize
from lstmlab.secrets import MASK, mask
from lstmlab.tracking.uris import usable

JOB_FILE = "lstmlab_run.json"


def _number(value: float | None, fmt: str = ".4f") -> str:
    return "—" if value is None else format(value, fmt)


def verdict(summary: RunSummary) -> str:
    """Plain words: did the model beat the naive forecast, tomorrow = today?"""
    test, naive = summary.test_rmse, summary.naive_test_rmse
    if test is None or naive is None:  # beat_naive is None
        return "no test metrics to judge"
    ratio = test / naive if naive else float("inf")
    if summary.beat_naive:
        return f'the model BEAT the naive forecast "tomorrow = today" (test RMSE {1 - ratio:.0%} lower)'
    return (f'the model did NOT beat the naive forecast "tomorrow = today" '
            f"(test RMSE {ratio:.2f}x the naive one)")


def full(summary: RunSummary) -> str:
    """The end of a single run: what it found and where to look."""
    look = "open" if summary.server else "lstmlab ui, then open"
    return "\n".join([
        f"Run {summary.run_name} {summary.run_id} (experiment {summary.experiment!r}, "
        f"data {summary.data}): {summary.status.lower()}",
        f"  test RMSE {_number(summary.test_rmse)}   naive {_number(summary.naive_test_rmse)}   "
        f"skill {_number(summary.test_skill, '+.4f')}",
        f"  {verdict(summary)}",
        f"  val RMSE {_number(summary.val_rmse)}   epochs {summary.epochs_run}   "
        f"{_number(summary.train_seconds, '.1f')} s training",
        f"Look: {look} {summary.url}",
        "      lstmlab compare   (runs against the baseline, with seed variance)",
    ])


def compact(summary: RunSummary, job: str, reused: bool = False) -> str:
    """One line per multirun job."""
    beat = {True: "beat naive", False: "lost to naive", None: "no verdict"}[summary.beat_naive]
    mark = " (reused)" if reused else ""
    return (f"job {job}: {summary.run_name} {summary.run_id[:8]}{mark}  test RMSE {_number(summary.test_rmse)} "
            f"vs naive {_number(summary.naive_test_rmse)} (skill {_number(summary.test_skill, '+.3f')}, "
            f"{beat})  val RMSE {_number(summary.val_rmse)}  epochs {summary.epochs_run}  "
            f"{_number(summary.train_seconds, '.1f')} s")


def table(rows: list[tuple[str, RunSummary, bool]]) -> str:
    """A multirun's jobs, one row each (reused: a run an earlier command trained), then where to look."""
    width = max([3, *(len(job) for job, _, _ in rows)])
    header = (f"{'job':>{width}}  {'run':<16} {'run id':<8}  {'val_rmse':>10} {'test_rmse':>10} "
              f"{'naive':>10} {'skill':>8}  beat naive  reused")
    lines = [header]
    for job, s, reused in rows:
        beat = {True: "yes", False: "no", None: "—"}[s.beat_naive]
        lines.append(f"{job:>{width}}  {s.run_name[:16]:<16} {s.run_id[:8]:<8}  {_number(s.val_rmse):>10} "
                     f"{_number(s.test_rmse):>10} {_number(s.naive_test_rmse):>10} "
                     f"{_number(s.test_skill, '+.3f'):>8}  {beat:<10}  {'yes' if reused else ''}".rstrip())
    if rows:
        first = rows[0][1]
        where = first.server or "lstmlab ui, then"
        lines.append(f"Look: {where} {first.url.split('/runs/')[0]}   or: lstmlab compare")
    return "\n".join(lines)


def record_job(output_dir: str, job: str, number: int, run_id: str, tracking_uri: str,
               reused: bool = False) -> None:
    """Leave the job's run id where the multirun's table (and its progress line) will look for it."""
    record = {"job": job, "number": number, "run_id": run_id, "tracking_uri": mask(tracking_uri), "reused": reused}
    (Path(output_dir) / JOB_FILE).write_text(json.dumps(record))


class MultirunTable(Callback):
    """Hydra callback (conf/train.yaml, hydra.callbacks.summary): a multirun ends with its table."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        records = [json.loads(path.read_text())
                   for path in sweep_folder(config).glob(f"*/{JOB_FILE}")]
        if not records:
            return
        rows = []
        for record in sorted(records, key=lambda r: r["number"]):
            uri = record["tracking_uri"]  # masked when it had a password: the multirun's own has it
            mlflow.set_tracking_uri(usable(config.tracking.uri) if MASK in uri else uri)
            rows.append((str(record["job"]), summarize(record["run_id"]), bool(record.get("reused"))))
        reused = sum(1 for *_, was_reused in rows if was_reused)
        of_which = f", {reused} reused" if reused else ""
        print(f"\nMultirun: {count(len(rows), 'run')} recorded{of_which} (in {config.hydra.sweep.dir})", flush=True)
        print(table(rows), flush=True)
