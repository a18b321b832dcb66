"""What one job of `lstmlab train` runs, in whichever process its launcher gives it (this one, a
loky worker, a cluster node): run_experiment, or a sweep's trial, then the run's summary or the
job's line. commands.train's Hydra task imports this module once Hydra has composed a config.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
from hydra.conf import HydraConf
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from lstmlab.commands import summary
from lstmlab.errors import EXIT_USER_ERROR, LstmlabError, error_line
from lstmlab.pipeline.experiment import run_experiment
from lstmlab.records.summary import summarize
from lstmlab.sweep.confirm_job import run_confirm

# Overriding any of these makes a run something other than the variant it started from.
MODEL_DEFINING = ("model", "optimizer", "loss")


def variant_name(variant: str, overrides: list[str]) -> str:
    """The variant's name, or "custom" when the overrides change what the variant defines."""
    for override in overrides:
        key = override.lstrip("~+").split("=", 1)[0]
        if key.split(".", 1)[0].split("@", 1)[0] in MODEL_DEFINING:
            return "custom"
    return variant


def run(cfg: DictConfig, hydra_cfg: HydraConf) -> float:
    """One Hydra job: returns the objective every sweep minimizes, `val_rmse` in price units."""
    with open_dict(cfg):
        cfg.tracking.variant = variant_name(cfg.tracking.variant, list(hydra_cfg.overrides.task))
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if cfg.get("trial") is not None:  # a job of an Optuna sweep: see lstmlab/sweep/trial.py
            from lstmlab.sweep.trial import run_trial  # Optuna: loaded by a sweep's jobs only

            result = run_trial(cfg)  # the sweeper prints the trial's line
        elif cfg.get("confirm") is not None:  # a sweep's confirm run: see lstmlab/sweep/confirm_job.py
            result = run_confirm(cfg)
        else:
            result = run_experiment(cfg)
    except LstmlabError as error:
        if multirun or os.environ.get("LSTMLAB_DEBUG") == "1":
            raise  # the sweeper decides (Hydra's names the job, ours records a failed trial), or --debug
        # Here, not in the command line: Hydra would add "Error executing job ..." on the way up.
        print(error_line("train", str(error)), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    swept = "trial" if cfg.get("trial") is not None else "confirm" if cfg.get("confirm") is not None else None
    _show(result.run_id, hydra_cfg, multirun, swept=swept, reused=result.reused)
    return result.metrics["val_rmse"]


def _show(run_id: str, hydra_cfg: HydraConf, multirun: bool, swept: str | None, reused: bool) -> None:
    """The run's summary (a single run), or its line and job record (a multirun's job; `swept`:
    "trial" or "confirm" for a sweep's job, whose line the sweeper prints)."""
    if not multirun:
        print(summary.full(summarize(run_id)), flush=True)
        return
    # a trial's folder is named after its trial number (conf/train.yaml, hydra.sweep.subdir)
    folder = Path(hydra_cfg.runtime.output_dir).name  # a confirm run's: confirm-trial-17-seed-3
    number = int(folder) if swept == "trial" else int(hydra_cfg.job.num)
    job = {"trial": f"trial {number}", "confirm": folder}.get(swept or "", str(number))
    summary.record_job(hydra_cfg.runtime.output_dir, job, number, run_id, mlflow.get_tracking_uri(), reused)
    if swept is None:  # the sweeper prints its jobs' lines: no summary to read back
        print(summary.compact(summarize(run_id), job, reused), flush=True)
