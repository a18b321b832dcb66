"""Each run's test predictions (its `predictions.csv` artifact), downloaded once and cached by run id.

A finished run's artifacts do not change, so a copy kept under the temp dir
(`$TMPDIR/lstmlab-predictions/<run_id>/`) serves every later compare; a store on a remote
server is then read once per run, not once per compare.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab.records.names import PREDICTIONS_ARTIFACT

# A progress bar per small artifact is noise on a command's output (as in records.store).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

CACHE_DIR = Path(tempfile.gettempdir()) / "lstmlab-predictions"
# Downloads wait on the store (disk or network), not the CPU: a few threads overlap them.
DOWNLOAD_THREADS = 8


def predictions_path(run_id: str, cache: Path = CACHE_DIR) -> Path | None:
    """The run's predictions.csv on local disk (downloaded on first use); None when it has none.

    A run without one is remembered too (an empty `none` file): a finished run never gains it.
    """
    target, absent = cache / run_id / PREDICTIONS_ARTIFACT, cache / run_id / "none"
    if target.exists():
        return target
    if absent.exists():
        return None
    partial = cache / f".{run_id}-{os.getpid()}-{threading.get_ident()}"  # renamed when whole: no half file cached
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PREDICTIONS_ARTIFACT, dst_path=str(partial))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        return target
    except (MlflowException, OSError):
        if _listed_without_predictions(run_id):  # not a passing failure of the store: remember
            absent.parent.mkdir(parents=True, exist_ok=True)
            absent.touch()
        return None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _listed_without_predictions(run_id: str) -> bool:
    try:
        return PREDICTIONS_ARTIFACT not in {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    except (MlflowException, OSError):
        return False


def read_predictions(run_id: str, cache: Path = CACHE_DIR) -> pd.DataFrame | None:
    """Date-indexed `actual` and `predicted` (and `fold` with walk-forward); None without the artifact."""
    path = predictions_path(run_id, cache)
    if path is None:
        return None
    table = pd.read_csv(path)
    if not {"date", "actual", "predicted"} <= set(table.columns):
        return None
    table["date"] = pd.to_datetime(table["date"])
    return table.set_index("date").sort_index()


def read_all(run_ids: Iterable[str], cache: Path = CACHE_DIR) -> dict[str, pd.DataFrame | None]:
    ids = list(dict.fromkeys(run_ids))
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        return dict(zip(ids, pool.map(lambda run_id: read_predictions(run_id, cache), ids)))


def squared_errors(table: pd.DataFrame) -> pd.Series:
    """A run's (actual − predicted)² per test day, from its `read_predictions` table."""
    return ((table["actual"] - table["predicted"]) ** 2).groupby(level=0).last().astype(np.float64)
