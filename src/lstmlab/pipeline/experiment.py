"""The one function that turns a config into a result: a single run, a variant in a multirun,
a sweep trial and a rerun all call `run_experiment`.

Keras is behind one door: run_experiment imports pipeline.keras_side once, after the job's
checks, its backend's choice and a reused run's lookup, so none of those costs a framework import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig

from lstmlab import console, interrupts, runtime
from lstmlab.pipeline import evaluation
from lstmlab.pipeline.checks import check_config
from lstmlab.pipeline.claim import Claim, Yielded, config_key
from lstmlab.pipeline.data import Dataset
from lstmlab.pipeline.epochs import EpochHook
from lstmlab.pipeline.reuse import finished_run
from lstmlab.tracking.open import check_store, use_store

__all__ = ["EpochHook", "RunResult", "preflight", "run_experiment"]  # EpochHook: for run_experiment's callers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    """What `run_experiment` returns: the MLflow run that holds the result, its final metrics
    (lstmlab.names.FINAL_METRICS, price units), and whether that run was reused rather than
    trained (`tracking.skip_finished`)."""

    run_id: str
    metrics: Mapping[str, float]
    reused: bool = False


def run_experiment(
    cfg: DictConfig,
    epoch_hooks: Sequence[EpochHook] = (),
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
) -> RunResult:
    """Train, evaluate and record one run; returns the run and its final metrics; with
    `tracking.skip_finished`, those of a FINISHED run of the same configuration and data when
    there is one (`reused`), also of one another command was training at the same time
    (pipeline.claim: it is waited for, and trained here only if it does not finish).

    Everything a user can get wrong is checked before the MLflow run starts, so a bad config
    leaves no run behind; a failure after the start ends the run as FAILED. With
    `evaluation=walk_forward` every fold trains a fresh model from the same seed.
    """
    skip_finished = bool(cfg.tracking.get("skip_finished"))
    with interrupts.at_once():  # nothing is written before the run: a Ctrl-C stops at once
        splits = preflight(cfg)
        runtime.use_backend(cfg.trainer.backend)  # before keras_side imports Keras
        if skip_finished:  # before Keras loads: a reused job costs a query
            found = _finished(cfg, splits[0].sha256, "this configuration has a FINISHED run on these data")
            if found is not None:
                return found
        runtime.import_keras()  # TensorFlow's start-up lines hidden
        # The door to Keras: once per job, after the checks, the backend's choice and the reuse above.
        from lstmlab.pipeline import keras_side

        keras_side.check(cfg)  # a bad activation, optimizer or loss: no run yet
    experiment = use_store(cfg.tracking)  # only now: a config or data error leaves no store behind
    interrupts.check()  # a safe point: before the run starts
    if not skip_finished:
        return RunResult(*keras_side.record(cfg, splits, epoch_hooks, run_name, tags, parent_run_id))

    def finished() -> str | None:  # looked up once more once the claim is won (said once already)
        found = finished_run(cfg, splits[0].sha256, say_why_not=False)
        return found.run_id if found is not None else None

    claim = Claim(experiment.experiment_id, config_key(cfg, splits[0].sha256), finished)
    while True:  # another command's twin may hold the configuration: wait for it, reuse its run
        try:
            return RunResult(*keras_side.record(cfg, splits, epoch_hooks, run_name, tags, parent_run_id, claim))
        except Yielded as yielded:
            if claim.wait_for(yielded.holder):
                found = _finished(cfg, splits[0].sha256, "trained by another command at the same time")
                if found is not None:
                    return found
            # it ended otherwise (stopped, failed, its process gone): claim the configuration again


def _finished(cfg: DictConfig, data_sha256: str, why: str) -> RunResult | None:
    """The FINISHED run of the job's configuration and data (tracking.skip_finished), said in one line."""
    found = finished_run(cfg, data_sha256)
    if found is None:
        return None
    log.info("reused run %s (%s): %s; not trained again (tracking.skip_finished=true)", found.run_id,
             found.run_name, why)
    return RunResult(found.run_id, found.metrics, reused=True)


def preflight(cfg: DictConfig) -> list[Dataset]:
    """What a job checks before any framework is imported or anything is written, in one place
    for a run and for a sweep (whose sweeper runs it on every job config before the study opens):
    every config value, then the data and its evaluation splits, then whether a tracking server
    answers. A bad one is one line and leaves no run, store or trial behind. Only what needs Keras
    (the activation's name, the optimizer's and loss's arguments) is checked later, by the job,
    once its backend is chosen. The splits (the datasets to train on) are kept per process."""
    with interrupts.at_once():  # it reads only: a Ctrl-C stops it at once, however large the data
        check_config(cfg)  # every value, before data, framework or run
        console.quiet_environment()  # before TensorFlow is imported
        splits = evaluation.splits(cfg)  # data errors are found before the seconds a framework import costs
        check_store(cfg.tracking)  # so is a tracking server that does not answer (nothing written)
    return splits
