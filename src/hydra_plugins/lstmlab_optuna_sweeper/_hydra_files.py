"""What Hydra writes for a sweep: each worker in a folder of its own, and no password anywhere.

Hydra composes every job from the multirun's config: its `hydra.overrides.hydra` plus the job's
own overrides (ConfigLoader.load_sweep_config), then writes them into the job's `.hydra/` files;
the sweeper writes the multirun's config as `multirun.yaml`. So what is set here, on the
multirun's config before the first job, is what every file of the sweep says:
- the sweep folder, claimed with an atomic mkdir: a second worker started in the same second
  (the same `${now:...}` folder), or a sweep given a folder that exists, writes into
  `<folder>-<pid>` instead, and its closing table lists its own trials only;
- `hydra.sweeper.storage` with its password masked, from the command line or a config file, also
  in the Hydra state handed to every job.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lstmlab.secrets import mask
from lstmlab.sweep.override_text import format_value

STORAGE_KEY = "hydra.sweeper.storage"
SWEEP_DIR_KEY = "hydra.sweep.dir"


def prepare(config: DictConfig, shown_storage: str) -> Path:
    """Set the sweep's own folder and the masked storage on the multirun's `config`, write
    `multirun.yaml` there; the folder."""
    folder = own_folder(Path(str(config.hydra.sweep.dir)))
    set_for_every_job(config, SWEEP_DIR_KEY, str(folder))
    given = str(OmegaConf.select(config, STORAGE_KEY))
    if mask(given) != given:
        set_for_every_job(config, STORAGE_KEY, shown_storage)
    if HydraConfig.initialized():
        # Hydra 1.4 installs a copy of the multirun's config before the sweeper starts: the Hydra
        # state every job is handed (pickled to disk for submitit) would hold the password.
        HydraConfig.instance().set_config(config)
    OmegaConf.save(config, folder / "multirun.yaml")
    return folder


def own_folder(wanted: Path) -> Path:
    """`wanted`, created now; `wanted-<pid>` when it exists already (another worker's)."""
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for candidate in (wanted, wanted.with_name(f"{wanted.name}-{os.getpid()}")):
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    # The pid's folder too (a worker of that pid on another machine sharing the folder): any name.
    return Path(tempfile.mkdtemp(prefix=f"{wanted.name}-{os.getpid()}-", dir=wanted.parent))


def set_for_every_job(config: DictConfig, key: str, value: Any) -> None:
    """`key` = `value` in the multirun's config and in the overrides every job is composed with
    (replacing any given for `key`). Hydra 1.4 makes the `hydra` node read-only itself before the
    sweeper starts (HydraConfig.set_config), which the root's flag does not lift."""
    with read_write(config.hydra), open_dict(config.hydra):
        overrides = [o for o in config.hydra.overrides.hydra if o.split("=", 1)[0].lstrip("+~") != key]
        config.hydra.overrides.hydra = [*overrides, f"{key}={format_value(value)}"]
        OmegaConf.update(config, key, value, merge=False)
