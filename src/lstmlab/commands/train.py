"""`lstmlab train`: the Hydra application around `run_experiment`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from lstmlab.commands.hydra_compat import VERSION_BASE, hydra_arguments
from lstmlab.errors import EXIT_USER_ERROR, LstmlabError, error_line

# Overriding any of these makes a run something other than the variant it started from.
MODEL_DEFINING = ("model", "optimizer", "loss")
# Hydra's modes, of which a command line may give one (its rule, checked in _run_hydra).
MODES = {"run": "-r/--run", "multirun": "-m/--multirun", "cfg": "-c/--cfg", "info": "-i/--info",
         "shell_completion": "-sc/--shell-completion"}


def variant_name(variant: str, overrides: list[str]) -> str:
    """The variant's name, or "custom" when the overrides change what the variant defines."""
    for override in overrides:
        key = override.lstrip("~+").split("=", 1)[0]
        if key.split(".", 1)[0].split("@", 1)[0] in MODEL_DEFINING:
            return "custom"
    return variant


def task(cfg: DictConfig) -> float:
    """One Hydra job: returns the objective every sweep minimizes, `val_rmse` in price units."""
    hydra_cfg = HydraConfig.get()
    with in_start_directory(hydra_cfg):
        return _job(cfg, hydra_cfg)


@contextmanager
def in_start_directory(hydra_cfg: HydraConf) -> Iterator[None]:
    """The job runs where the command started, whatever hydra.job.chdir says.

    With hydra.job.chdir=true Hydra moves each job into its output folder, and every relative path
    lstmlab reads from there pointed into it: MLflow's default store (a new mlflow.db and mlruns/
    per run, while the summary's link names the project's), a relative SQLite tracking.uri,
    data.path. The paths are the project's, relative to where the command started; a job writes
    no file of its own in its working directory (its log and .hydra/ go to the output folder by
    absolute paths), so it goes back there while it runs."""
    here, start = os.getcwd(), str(hydra_cfg.runtime.cwd)
    if here == start:
        yield
        return
    os.chdir(start)
    try:
        yield
    finally:
        os.chdir(here)  # Hydra restores its own working directory from the output folder


def _job(cfg: DictConfig, hydra_cfg: HydraConf) -> float:
    from lstmlab.pipeline.experiment import run_experiment

    with open_dict(cfg):
        cfg.tracking.variant = variant_name(cfg.tracking.variant, list(hydra_cfg.overrides.task))
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if cfg.get("trial") is not None:  # a job of an Optuna sweep: see lstmlab/sweep/trial.py
            from lstmlab.sweep.trial import run_trial

            result = run_trial(cfg)  # the sweeper prints the trial's line
        elif cfg.get("confirm") is not None:  # a sweep's confirm run: see lstmlab/sweep/confirm_job.py
            from lstmlab.sweep.confirm_job import run_confirm

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
    import mlflow

    from lstmlab.commands import summary
    from lstmlab.records.summary import summarize

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


def check_flags(hydra_args: argparse.Namespace) -> None:
    """The flags Hydra refuses together, refused in one line before Hydra raises its ValueError
    (a traceback: Hydra reports only its config errors in one line). Hydra answers --help and
    --hydra-help before it looks, so they pass."""
    if hydra_args.help or hydra_args.hydra_help:
        return
    given = [flag for mode, flag in MODES.items() if getattr(hydra_args, mode) not in (None, False)]
    shown = [mode for mode in ("cfg", "info") if getattr(hydra_args, mode) is not None]
    if hydra_args.multirun and shown:
        flag = {"cfg": "--cfg job", "info": "--info"}[shown[0]]
        raise LstmlabError(
            f"-m cannot go with {flag.split()[0]}: it shows the config of one run and runs nothing; drop -m "
            f"and give one value per key, e.g. `lstmlab train variant=tanh {flag}` (a sweep's settings: "
            "`lstmlab train hparams_search=variants --cfg hydra -p hydra.sweeper`)")
    if len(given) > 1:
        raise LstmlabError(f"{' and '.join(given)} cannot go together: give one of "
                           f"{', '.join(MODES.values())}")
    if hydra_args.resolve and hydra_args.cfg is None:
        raise LstmlabError("--resolve goes with --cfg only: `lstmlab train --cfg job --resolve`")
    if getattr(hydra_args, "experimental_rerun", None) is not None and hydra_args.multirun:
        raise LstmlabError("--experimental-rerun reruns one job: drop -m/--multirun")


def main(args: list[str]) -> int:
    """Run Hydra with `args` as its command line (the grammar users know: -m, --cfg, --help)."""
    from lstmlab.paths import config_dir

    sys.argv = ["lstmlab train", *args]
    hydra_args = hydra_arguments(args)  # a bad flag: Hydra's usage line and exit 2, as Hydra would
    check_flags(hydra_args)
    if hydra_args.shell_completion:  # Hydra's -sc install=bash, answered for the `lstmlab` command
        from lstmlab.commands.completion import hydra_style

        return hydra_style(hydra_args.overrides)
    if hydra_args.info is not None:
        # Hydra's --info prints through a stdout handler it adds to the root logger; the console's
        # handler would print every line a second time. It only prints: `| head` ends it quietly.
        logging.getLogger().handlers.clear()
        logging.raiseExceptions = False
    user_wants_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach the command line, which prints one line
    app = hydra.main(config_path=config_dir(), config_name="train", **VERSION_BASE)(task)
    try:
        app()
    finally:
        if not user_wants_traceback:
            os.environ.pop("HYDRA_FULL_ERROR", None)
    return 0
