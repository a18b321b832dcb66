"""Where lstmlab finds its configs, writes its reports and keeps its caches (a leaf module: imports
nothing of ours)."""

from __future__ import annotations

import os
from pathlib import Path

# Compare reports, relative to the working directory like Hydra's output folders (docs/contracts.md, "Files and folders").
REPORTS_DIR = Path("experiments") / "reports"


def cache_home() -> Path:
    """lstmlab's folder in the user's cache: $XDG_CACHE_HOME/lstmlab, else ~/.cache/lstmlab."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lstmlab"


def config_dir() -> str:
    """conf/ of the checkout (editable install), else the copy packaged inside lstmlab."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "conf", here / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError("lstmlab's conf/ folder is missing from the installation")
