"""Each run's test predictions (its `predictions.csv` artifact): read whole or refused, cached by run id.

A `predictions.csv` is accepted only when it parses whole: the header names `date`, `actual` and
`predicted` (and at most `naive` and `fold` besides; a run recorded before every run wrote its
fold is one fold, the holdout's), every row has as many fields as the header,
the last row ends its line (a file cut short does not), every date is a whole date, every number
a finite number, no day twice, and its rows give the test RMSE the run recorded. Anything else is
*damaged*: refused for that run (named by id), never cached, never partly paired. A run whose
artifacts hold no `predictions.csv` is *missing* it; the two get different notes.

A finished run's artifacts do not change, so a checked copy kept in the user's cache
(`~/.cache/lstmlab/predictions/<run_id>/`, under `$XDG_CACHE_HOME` when set) serves every later
compare, as a small binary array that loads without parsing: the 2,000 runs of a large study load
in a fraction of a second. Only what passed the checks is cached, whole or not at all (a rename):
a damaged or missing artifact is looked at again by the next compare, so a repaired one is read.
A cache that cannot be written costs the copy, not the predictions.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import PREDICTIONS_ARTIFACT
from lstmlab.paths import cache_home

CACHED = "predictions.npy"  # the checked copy in a run's cache folder
REQUIRED = ("date", "actual", "predicted")
KNOWN_COLUMNS = {*REQUIRED, "naive", "fold"}
ROW = np.dtype([("day", "datetime64[ns]"), ("actual", "f8"), ("predicted", "f8"), ("naive", "f8"), ("fold", "i8")])
RMSE_TOLERANCE = 1e-6  # relative: the CSV keeps every digit, so only other rows give another RMSE
# Downloads wait on the store (disk or network), not the CPU: a few threads overlap them.
DOWNLOAD_THREADS = 8


class Damaged(ValueError):
    """A predictions.csv that does not parse whole; the message says where."""


@dataclass(frozen=True)
class Unusable:
    """Why a run has no predictions to pair: `missing` (no artifact) or damaged (`why`)."""

    run_id: str
    why: str | None = None  # None: missing

    @property
    def damaged(self) -> bool:
        return self.why is not None

    def note(self) -> str:
        if self.damaged:
            return f"run {self.run_id}: its {PREDICTIONS_ARTIFACT} is damaged ({self.why})"
        return f"run {self.run_id}: its {PREDICTIONS_ARTIFACT} is missing"


def default_cache() -> Path:
    return cache_home() / "predictions"


def parse(text: str, recorded_rmse: float | None = None) -> np.ndarray:
    """The rows of a predictions.csv as a ROW array in date order; Damaged unless it parses whole."""
    if not text:
        raise Damaged("empty")
    if not text.endswith("\n"):
        raise Damaged("cut short: its last row does not end")
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    if not set(REQUIRED) <= set(header) or not set(header) <= KNOWN_COLUMNS or len(set(header)) < len(header):
        raise Damaged(f"columns {','.join(header)}; expected {','.join(REQUIRED)}[,naive][,fold]")
    if not body:
        raise Damaged("no rows")
    short = next((n for n, row in enumerate(body, 2) if len(row) != len(header)), None)
    if short is not None:
        raise Damaged(f"line {short} has {len(body[short - 2])} fields, the header {len(header)}")
    columns = dict(zip(header, map(list, zip(*body))))
    table = np.zeros(len(body), ROW)
    dates = pd.Series(columns["date"])
    whole = dates.str.fullmatch(r"\d{4}-\d{2}-\d{2}([ T][\d:.]+)?")
    if not whole.all():
        raise Damaged(f"line {int(np.argmin(whole)) + 2}: {dates[~whole].iloc[0]!r} is not a date")
    try:
        table["day"] = pd.to_datetime(dates, format="ISO8601").to_numpy("datetime64[ns]")
        for name in ("actual", "predicted", "naive"):
            table[name] = np.asarray(columns[name], dtype=float) if name in columns else math.nan
        folds = np.asarray(columns["fold"], dtype=float) if "fold" in columns else np.ones(len(body))
    except ValueError as error:
        raise Damaged(first_line(error)) from None
    if not (np.isfinite(folds) & (folds >= 1) & (folds == np.round(folds))).all():
        raise Damaged("a fold that is not a whole number from 1")
    table["fold"] = folds.astype(np.int64)
    if not np.isfinite(table["actual"]).all() or not np.isfinite(table["predicted"]).all():
        raise Damaged("a value that is not a finite number")
    table = np.sort(table, order="day")
    if (np.diff(table["day"].astype(np.int64)) == 0).any():
        raise Damaged("a day twice")
    rmse = math.sqrt(float(np.mean((table["actual"] - table["predicted"]) ** 2)))
    if recorded_rmse is not None and math.isfinite(recorded_rmse) and \
            not math.isclose(rmse, recorded_rmse, rel_tol=RMSE_TOLERANCE, abs_tol=1e-12):
        raise Damaged(f"its {len(table)} rows give test RMSE {rmse:.6g}, the run recorded {recorded_rmse:.6g}")
    return table


def read_predictions(run_id: str, cache: Path, recorded_rmse: float | None = None) -> np.ndarray | Unusable:
    """The run's checked predictions (a ROW array), from the cache or downloaded and checked."""
    kept = cache / run_id / CACHED
    if kept.exists():
        try:
            table = np.load(kept, allow_pickle=False)
            if table.dtype == ROW:
                return table
        except (OSError, ValueError):
            pass
        with suppress(OSError):  # a cache file spoiled since, or of another layout: read the artifact again
            kept.unlink()
    with _scratch(cache, run_id) as folder:
        path = _download(run_id, folder)
        if path is None:
            return Unusable(run_id)
        try:
            table = parse(path.read_text(encoding="utf-8", errors="strict"), recorded_rmse)
        except (Damaged, UnicodeDecodeError) as error:
            return Unusable(run_id, str(error) if isinstance(error, Damaged) else "not text")
        with suppress(OSError):  # kept whole or not at all: written beside, then renamed
            np.save(folder / CACHED, table, allow_pickle=False)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(folder / CACHED, kept)
        return table


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


def read_all(recorded_rmse: Mapping[str, float], cache: Path | None = None) -> dict[str, np.ndarray | Unusable]:
    """`read_predictions` of each run (keys: run ids, values: their recorded test RMSE), a few
    downloads at a time; `cache`: default_cache()."""
    cache = cache or default_cache()
    ids = list(recorded_rmse)
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        tables = pool.map(lambda run_id: read_predictions(run_id, cache, recorded_rmse[run_id]), ids)
        return dict(zip(ids, tables))


def daily_losses(tables: Mapping[str, np.ndarray | Unusable]) -> tuple[pd.DataFrame, pd.Series]:
    """Squared errors per day (rows: every day any run forecast; columns: run ids; NaN where a run
    did not forecast that day) and the naive forecast's, from the runs' checked predictions."""
    usable = {run_id: table for run_id, table in tables.items() if not isinstance(table, Unusable)}
    days = np.unique(np.concatenate([t["day"] for t in usable.values()])) if usable else np.array([], "datetime64[ns]")
    losses = np.full((len(days), len(usable)), math.nan)
    naive = np.full(len(days), math.nan)
    for column, table in enumerate(usable.values()):
        rows = np.searchsorted(days, table["day"])
        losses[rows, column] = (table["actual"] - table["predicted"]) ** 2
        known = np.isnan(naive[rows]) & np.isfinite(table["naive"])  # the same naive forecast in every run
        naive[rows[known]] = ((table["actual"] - table["naive"]) ** 2)[known]
    index = pd.DatetimeIndex(days, name="date")
    return pd.DataFrame(losses, index=index, columns=list(usable)), pd.Series(naive, index=index, name="naive")


def unusable_notes(tables: Iterable[np.ndarray | Unusable]) -> list[str]:
    """One note for the damaged artifacts and one for the missing ones, each naming the runs."""
    problems = [table for table in tables if isinstance(table, Unusable)]
    notes = []
    damaged = [p for p in problems if p.damaged]
    if damaged:
        notes.append(f"Refused {len(damaged)} damaged {PREDICTIONS_ARTIFACT} (those runs get no model test: "
                     "MCS, SPA): " + "; ".join(p.note() for p in damaged) + ".")
    missing = [p.run_id for p in problems if not p.damaged]
    if missing:
        notes.append(f"No {PREDICTIONS_ARTIFACT} in {len(missing)} run{'s' if len(missing) > 1 else ''} (no model "
                     f"test: MCS, SPA): {', '.join(missing)}.")
    return notes
