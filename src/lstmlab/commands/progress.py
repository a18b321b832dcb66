"""A multirun's progress as its jobs end: `job 37/110 done · 12 reused · ETA 1 h 12 min`.

A Hydra callback (conf/train.yaml, hydra.callbacks.progress). The launching process writes the
plan into the sweep folder (how many jobs, how many at once); each job, wherever its launcher
runs it (in-process, a loky worker, a cluster node sharing the folder), appends how it ended and
prints the line. The ETA: the mean time of the jobs trained so far (reused ones cost nothing),
times the jobs left, over the launcher's parallelism. Optuna sweeps print their own lines.

A multirun of no job at all (`-m 'variant=glob(nomatch*)'`) is refused here, where its jobs are
counted: Hydra would print "Launching 0 jobs" and exit 0.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import IO, Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lstmlab.commands.hydra_compat import empty_sweeps, planned_jobs
from lstmlab.commands.hydra_files import sweep_folder
from lstmlab.commands.summary import JOB_FILE
from lstmlab.errors import EXIT_USER_ERROR, error_line
from lstmlab.sweep.launchers import parallelism

PLAN_FILE = "lstmlab_progress.json"
ENDED_FILE = "lstmlab_progress.jsonl"


def duration(seconds: float) -> str:
    """'45 s', '12 min', '1 h 12 min'."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def line(ended: list[dict[str, Any]], total: int, parallel: int) -> str:
    done = len(ended)
    reused = sum(1 for job in ended if job.get("reused"))
    trained = [job["seconds"] for job in ended if not job.get("reused") and job.get("status") == "COMPLETED"]
    parts = [f"job {done}/{total} done"]
    if reused:
        parts.append(f"{reused} reused")
    failed = sum(1 for job in ended if job.get("status") != "COMPLETED")
    if failed:
        parts.append(f"{failed} failed")
    left = max(0, total - done)
    if left and trained:
        parts.append(f"ETA {duration(sum(trained) / len(trained) * math.ceil(left / parallel))}")
    elif left:
        parts.append("ETA after the first trained job")
    return " · ".join(parts)


def nothing_to_run(empty: list[str]) -> str:
    """The line for a multirun whose sweeps `empty` give no value."""
    said = " and ".join(empty) or "its sweep"
    hint = " (glob(...) matches a config group's options: `lstmlab train --help` lists them)" \
        if any("glob(" in sweep for sweep in empty) else ""
    return f"the multirun has no job to run: {said} {'give' if len(empty) > 1 else 'gives'} no value{hint}; nothing was run"


class MultirunProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        total = planned_jobs(config)
        if total is None:  # an Optuna sweep: its sweeper prints a line per trial
            return
        if total == 0:
            # SystemExit, as train.task does: Hydra turns a callback's exception into a warning
            print(error_line("train", nothing_to_run(empty_sweeps(config))), file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR)
        folder = sweep_folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        plan = {"total": total, "parallel": min(total, parallelism(config.hydra.get("launcher")))}
        (folder / PLAN_FILE).write_text(json.dumps(plan))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        folder = sweep_folder(config)
        plan_file = folder / PLAN_FILE
        if not plan_file.is_file():
            return
        plan = json.loads(plan_file.read_text())
        record = Path(str(config.hydra.runtime.output_dir)) / JOB_FILE
        reused = record.is_file() and bool(json.loads(record.read_text()).get("reused"))
        ended = {"seconds": time.perf_counter() - getattr(self, "started", time.perf_counter()),
                 "reused": reused, "status": getattr(job_return.status, "name", str(job_return.status))}
        with open(folder / ENDED_FILE, "a+") as jobs:
            _lock(jobs)  # jobs ending together each count the other once
            jobs.write(json.dumps(ended) + "\n")
            jobs.flush()
            jobs.seek(0)
            everything = [json.loads(text) for text in jobs.read().splitlines() if text.strip()]
        print(line(everything, plan["total"], plan["parallel"]), flush=True)


def _lock(handle: IO[str]) -> None:
    """An exclusive lock on the open file until it is closed (none where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(handle, fcntl.LOCK_EX)



