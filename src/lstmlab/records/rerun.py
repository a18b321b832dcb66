"""Rerun: train a logged run again from its own record and compare every final metric.

The config comes from the run's logged `config.yaml`, not from today's conf/, so a rerun is the
same experiment even after the defaults moved on. Only where it is recorded changes: the current
store ($MLFLOW_TRACKING_URI or MLflow's default; the one in the record may be stale) and the
run's experiment. Training is seeded and deterministic, so on the same machine and Keras backend
every final metric comes out identical; `--check` turns any difference into exit code 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mlflow
from omegaconf import open_dict

from lstmlab import interrupts
from lstmlab.names import DATA_TAG, FINAL_METRICS, REL_TOLERANCE
from lstmlab.pipeline.evaluation import splits
from lstmlab.pipeline.experiment import run_experiment
from lstmlab.records import store as records

# Wall-clock time differs on every run: reported, never checked.
TIMING_METRICS = frozenset({"train_seconds"})
ABS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MetricCheck:
    name: str
    original: float
    rerun: float
    checked: bool  # False for timing metrics
    same: bool


@dataclass(frozen=True)
class Rerun:
    original_run_id: str
    run_id: str
    run_name: str
    original_data_sha256: str | None
    data_sha256: str
    original_backend: str | None
    backend: str
    metrics: list[MetricCheck]

    @property
    def data_changed(self) -> bool:
        return self.original_data_sha256 is not None and self.original_data_sha256 != self.data_sha256

    @property
    def differing(self) -> list[MetricCheck]:
        return [m for m in self.metrics if m.checked and not m.same]


def same(a: float, b: float, rel_tol: float = REL_TOLERANCE) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel_tol, abs_tol=ABS_TOLERANCE)


def rerun(run_id: str, rel_tol: float = REL_TOLERANCE, announce=print) -> Rerun:
    """Rebuild `run_id` from its config.yaml, run it as a new run tagged `rerun_of`, compare."""
    with interrupts.at_once():  # reading the record and the data: a Ctrl-C stops at once
        original = records.get_run(run_id)
        run_id = original.info.run_id  # the full id, when a prefix was given
        cfg = records.load_config(original)
        records.check_data_file(
            cfg.data, run_id, "put the file back, or train on a copy: lstmlab train data=csv data.path=NEW ..."
        )
        with open_dict(cfg):
            cfg.tracking.uri = mlflow.get_tracking_uri()
            cfg.tracking.experiment = mlflow.get_experiment(original.info.experiment_id).name
            cfg.tracking.skip_finished = False  # a rerun trains: reusing the original would check nothing

        old_sha = original.data.tags.get(DATA_TAG)
        new_sha = splits(cfg)[0].sha256  # cached: run_experiment below reuses the prepared data
    if old_sha is not None and old_sha != new_sha:
        announce(data_changed_line(old_sha, new_sha))
    name = original.info.run_name
    announce(f"Rerunning {name} {run_id} from its config.yaml ...")
    result = run_experiment(cfg, run_name=name, tags={"rerun_of": run_id})

    checks = []
    for metric in FINAL_METRICS:
        if metric not in original.data.metrics and metric not in result.metrics:
            continue
        before = float(original.data.metrics.get(metric, math.nan))
        after = float(result.metrics.get(metric, math.nan))
        checked = metric not in TIMING_METRICS
        checks.append(MetricCheck(metric, before, after, checked, same(before, after, rel_tol)))
    return Rerun(
        original_run_id=run_id,
        run_id=result.run_id,
        run_name=name,
        original_data_sha256=old_sha,
        data_sha256=new_sha,
        original_backend=original.data.tags.get("keras_backend"),
        backend=cfg.trainer.backend,  # run_experiment trains on it or refuses
        metrics=checks,
    )


def data_changed_line(old: str, new: str) -> str:
    return (
        f"THE DATA HAVE CHANGED: today's data have fingerprint {new[:12]}…, the original run's "
        f"{old[:12]}… (data_sha256). The rerun trains on different data; its metrics are not "
        "expected to match."
    )
