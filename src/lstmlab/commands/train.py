"""`lstmlab train`: the Hydra application around `run_experiment`; what each of its jobs runs is
commands.job."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import hydra
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lstmlab.commands.completion import hydra_style
from lstmlab.commands.hydra_compat import VERSION_BASE, hydra_arguments
from lstmlab.errors import LstmlabError
from lstmlab.paths import config_dir

# Hydra's modes, of which a command line may give one (its rule, checked in _run_hydra).
MODES = {"run": "-r/--run", "multirun": "-m/--multirun", "cfg": "-c/--cfg", "info": "-i/--info",
         "shell_completion": "-sc/--shell-completion"}


def task(cfg: DictConfig) -> float:
    """One Hydra job: returns the objective every sweep minimizes, `val_rmse` in price units."""
    hydra_cfg = HydraConfig.get()
    with in_start_directory(hydra_cfg):
        # What a job runs, imported once Hydra has composed its config: `--help`, `--cfg job` and
        # config errors answer without MLflow, pandas or the pipeline.
        from lstmlab.commands import job

        return job.run(cfg, hydra_cfg)


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
    sys.argv = ["lstmlab train", *args]
    hydra_args = hydra_arguments(args)  # a bad flag: Hydra's usage line and exit 2, as Hydra would
    check_flags(hydra_args)
    if hydra_args.shell_completion:  # Hydra's -sc install=bash, answered for the `lstmlab` command
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
