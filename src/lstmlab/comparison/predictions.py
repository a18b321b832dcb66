"""Each run's test predictions (its `predictions.csv` artifact), downloaded once and cached by run id.

A finished run's artifacts do not change, so a copy kept in the user's cache
(`~/.cache/lstmlab/predictions/<run_id>/`, under `$XDG_CACHE_HOME` when set) serves every later
compare; a store on a remote server is then read once per run, not once per compare. A cache
that cannot be written costs the copy, not the predictions: they are read from a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import PREDICTIONS_ARTIFACT
from lstmlab.paths import cache_home

ABSENT = "none"  # an empty file in a run's cache folder: the run has no predictions.csv
# Downloads wait on the store (disk or network), not the CPU: a few threads overlap them.
DOWNLOAD_THREADS = 8


def default_cache() -> Path:
    return cache_home() / "predictions"


def read_predictions(run_id: str, cache: Path) -> pd.DataFrame | None:
    """Date-indexed `actual` and `predicted` (and `fold` with walk-forward); None when the run's
    artifacts hold no predictions.csv (remembered: a finished run never gains one)."""
    kept, absent = cache / run_id / PREDICTIONS_ARTIFACT, cache / run_id / ABSENT
    if kept.exists():
        return _table(kept)
    if absent.exists():
        return None
    with _scratch(cache, run_id) as folder:
        path = _download(run_id, folder)
        if path is None:
            with suppress(OSError):
                absent.parent.mkdir(parents=True, exist_ok=True)
                absent.touch()
            return None
        with suppress(OSError):  # kept whole or not at all (a rename); unkept, it is read where it is
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, kept)
            path = kept
        return _table(path)


@contextmanager
def _scratch(cache: Path, run_id: str) -> Iterator[Path]:
    """A download folder inside the cache (renamed from there: no half file is ever cached), or a
    temporary one where the cache cannot be written (read-only, a file in its way)."""
    folder = cache / f".{run_id}-{os.getpid()}-{threading.get_ident()}"
    try:
        folder.mkdir(parents=True)
    except OSError:
        with tempfile.TemporaryDirectory(prefix="lstmlab-predictions-") as temporary:
            yield Path(temporary)
        return
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _download(run_id: str, folder: Path) -> Path | None:
    """The run's predictions.csv downloaded into `folder`; None only when its artifact listing
    has none. Any other failure is the store's, said in one line."""
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PREDICTIONS_ARTIFACT,
                                                        dst_path=str(folder)))
    except (MlflowException, OSError) as error:
        try:
            listed = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
        except (MlflowException, OSError):
            listed = {PREDICTIONS_ARTIFACT}  # unknown: not a run without predictions
        if PREDICTIONS_ARTIFACT not in listed:
            return None
        raise LstmlabError(f"cannot read the {PREDICTIONS_ARTIFACT} of run {run_id}: {first_line(error)}") from None


def _table(path: Path) -> pd.DataFrame | None:
    table = pd.read_csv(path)
    if not {"date", "actual", "predicted"} <= set(table.columns):
        return None
    table["date"] = pd.to_datetime(table["date"])
    return table.set_index("date").sort_index()


def read_all(run_ids: Iterable[str], cache: Path | None = None) -> dict[str, pd.DataFrame | None]:
    """`read_predictions` of each run, a few downloads at a time; `cache`: default_cache()."""
    cache = cache or default_cache()
    ids = list(dict.fromkeys(run_ids))
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        return dict(zip(ids, pool.map(lambda run_id: read_predictions(run_id, cache), ids)))


def squared_errors(table: pd.DataFrame) -> pd.Series:
    """A run's (actual − predicted)² per test day, from its `read_predictions` table."""
    return ((table["actual"] - table["predicted"]) ** 2).groupby(level=0).last().astype(np.float64)
