"""Hydra callback (conf/train.yaml, hydra.callbacks.passwords): the files Hydra writes for a job
keep no password.

Hydra records what the user typed (`tracking.uri=postgresql://user:PW@host/db`) in the job's
`.hydra/config.yaml`, `hydra.yaml` and `overrides.yaml`, and a multirun's in its sweep folder's
`multirun.yaml`, all before the job starts; it has no hook before those writes. At `on_job_start`
(after them, before the task runs) each is rewritten with every URL's `user:password@` made
`user@` (lstmlab.secrets.drop_passwords). The files keep their YAML shape, so Hydra's habits
work on them as before (`-cp <run>/.hydra -cn config`, the overrides typed again); a run started
from them takes its password from where docs/reliability.md (Credentials) says to keep it
(~/.pgpass, PGPASSWORD, MLFLOW_TRACKING_PASSWORD) rather than from a file anyone with the folder
can read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lstmlab.secrets import drop_passwords

JOB_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # what hydra.core.utils.run_job saves
MULTIRUN_FILE = "multirun.yaml"  # what a sweeper saves in the sweep folder


def sweep_folder(config: DictConfig) -> Path:
    """The multirun's folder (`hydra.sweep.dir`, relative to where the command started): a job's
    callbacks run in the job's own folder under hydra.job.chdir=true."""
    return Path(str(config.hydra.runtime.cwd)) / str(config.hydra.sweep.dir)


def rewrite_without_passwords(path: Path) -> None:
    """`path` rewritten with its URLs' passwords dropped, when it has any; replaced whole (jobs
    of one multirun running side by side all rewrite its multirun.yaml)."""
    try:
        text = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return
    cleaned = drop_passwords(text)
    if cleaned == text:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(cleaned)
    os.replace(partial, path)


class DropPasswords(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra = config.hydra
        if hydra.output_subdir is not None:
            folder = Path(str(hydra.runtime.output_dir)) / str(hydra.output_subdir)
            for name in JOB_FILES:
                rewrite_without_passwords(folder / name)
        if hydra.mode == RunMode.MULTIRUN:
            rewrite_without_passwords(sweep_folder(config) / MULTIRUN_FILE)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep that started no job (all failed their checks) still leaves its file clean."""
        rewrite_without_passwords(sweep_folder(config) / MULTIRUN_FILE)
