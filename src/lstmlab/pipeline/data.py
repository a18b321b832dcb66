"""Data: load a daily price table, validate it, split it chronologically, scale, window.

The scaler is fitted on the training part only; validation and test windows may look back into
the preceding part (their inputs are past prices), but every target lies in its own part.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import dataset_name
from lstmlab.pipeline import transform
from lstmlab.pipeline.csv_table import match_column, read_price_csv
from lstmlab.pipeline.instantiate import instantiate
from lstmlab.plural import count

if TYPE_CHECKING:  # scikit-learn takes a second to import: not before the data have been read
    from sklearn.base import TransformerMixin


@dataclass(frozen=True)
class Part:
    """One chronological part as model inputs (scaled) and what evaluation needs (prices)."""

    x: np.ndarray  # (windows, lookback, features), scaled
    y: np.ndarray  # (windows, 1), scaled target
    dates: pd.DatetimeIndex  # date of each target
    actual: np.ndarray  # target price at each date
    previous: np.ndarray  # target price the day before: the naive (persistence) forecast


@dataclass(frozen=True)
class Dataset:
    train: Part
    val: Part
    test: Part
    feature_scaler: TransformerMixin
    target_scaler: TransformerMixin
    features: list[str]
    target: str
    sha256: str  # fingerprint of the table the windows were cut from
    table: pd.DataFrame  # that table: dates, features and target (recorded as the run's dataset)
    target_transform: str = "none"  # data.target_transform

    def to_price(self, scaled: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """Scaled model outputs back to price units (`previous`: the last prices, for returns)."""
        unscaled = self.target_scaler.inverse_transform(np.asarray(scaled).reshape(-1, 1))
        return transform.to_price(unscaled, previous, self.target_transform)


def data_name(data_cfg: DictConfig) -> str:
    """A short name for the data of `data_cfg`: sp500, synthetic, or csv-<file stem> (lstmlab.names)."""
    return dataset_name(str(data_cfg.source), str(data_cfg.path) if data_cfg.get("path") else None)


def data_source(data_cfg: DictConfig) -> str:
    """Where the data of `data_cfg` come from, in words a reader can follow back."""
    if data_cfg.source == "csv" and data_cfg.get("path"):
        return str(Path(str(data_cfg.path)).resolve())
    if data_cfg.source == "synthetic":
        return f"lstmlab.pipeline.data.synthetic_prices(rows={data_cfg.rows}, seed={data_cfg.seed})"
    return "arch.data.sp500.load()" if data_cfg.source == "sp500" else str(data_cfg.source)


def source_frame(data_cfg: DictConfig) -> pd.DataFrame:
    """The raw table of `data_cfg.source`, indexed by date and sorted, columns as in the source."""
    if data_cfg.source == "sp500":
        import arch.data.sp500  # ships the CSV inside the package: no network

        frame = arch.data.sp500.load()
    elif data_cfg.source == "csv":
        frame = read_price_csv(data_cfg)
    else:  # synthetic: pipeline.checks accepts no other source
        frame = synthetic_prices(rows=data_cfg.rows, seed=data_cfg.seed)
    return frame.sort_index(kind="stable")


def synthetic_prices(rows: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A geometric random walk with a slow cycle, on business days: a stand-in for real prices."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    log_returns = 0.0003 + 0.01 * rng.standard_normal(rows) + 0.002 * np.sin(2 * np.pi * t / 120)
    close = 100.0 * np.exp(np.cumsum(log_returns))
    volume = rng.integers(1_000_000, 5_000_000, rows).astype(float)
    dates = pd.bdate_range("2000-01-03", periods=rows, name="Date")
    return pd.DataFrame({"Close": close, "Volume": volume}, index=dates)


def _dates(index: pd.Index) -> str:
    shown = [str(d.date()) if hasattr(d, "date") else str(d) for d in index[:5]]
    more = f" and {len(index) - 5} more" if len(index) > 5 else ""
    return ", ".join(shown) + more


def select_columns(frame: pd.DataFrame, data_cfg: DictConfig, where: str) -> tuple[pd.DataFrame, list[str], str]:
    """Numeric target and feature columns, NaNs handled by `data_cfg.nan_policy`."""
    target = match_column(frame.columns, data_cfg.target, where, "data.target")
    requested = list(data_cfg.features) if data_cfg.get("features") else [data_cfg.target]
    features = [match_column(frame.columns, name, where, "data.features") for name in requested]
    columns = list(dict.fromkeys([*features, target]))
    table = frame[columns].astype(float)  # a CSV's numbers are parsed by csv_table, as written
    missing = table.index[table.isna().any(axis=1)]
    if len(missing):
        if data_cfg.nan_policy == "error":
            raise LstmlabError(
                f"{where}: missing values in {', '.join(columns)} on {_dates(missing)}; "
                "set data.nan_policy=drop or data.nan_policy=ffill to handle them"
            )
        table = table.dropna() if data_cfg.nan_policy == "drop" else table.ffill().dropna()
    return table, features, target


def fingerprint(table: pd.DataFrame) -> str:
    """sha256 of the dates and values the windows are cut from: the same data, the same digest."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, table.columns)).encode())
    digest.update(table.index.asi8.tobytes() if hasattr(table.index, "asi8") else str(list(table.index)).encode())
    digest.update(np.ascontiguousarray(table.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def split_rows(n_rows: int, data_cfg: DictConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of the train, val and test parts, in time order (no shuffling)."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_rows)
    n_val, n_test = round(n_rows * data_cfg.val_fraction), round(n_rows * data_cfg.test_fraction)
    try:  # whole row counts: fractions of fractions would round differently
        rest, test = train_test_split(rows, test_size=n_test, shuffle=False)
        train, val = train_test_split(rest, test_size=n_val, shuffle=False)
    except ValueError:
        raise LstmlabError(
            f"{n_rows} rows cannot be split into train/val/test with val_fraction="
            f"{data_cfg.val_fraction} and test_fraction={data_cfg.test_fraction}: a part would be empty"
        ) from None
    return train, val, test


def windows(values: np.ndarray, lookback: int) -> np.ndarray:
    """All windows of `lookback` consecutive rows; window i ends at row i + lookback - 1."""
    view = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0)
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)


def holdout_dataset(data_cfg: DictConfig) -> Dataset:
    """The data config in, model-ready windows of the holdout split out."""
    table = training_table(data_cfg)
    return make_dataset(table, data_cfg, *split_rows(table.rows, data_cfg))


@dataclass(frozen=True)
class Table:
    """The validated columns a dataset is cut from, before any split."""

    frame: pd.DataFrame  # features and target, indexed by date
    features: list[str]
    target: str
    where: str  # how errors name the data
    transform: str  # data.target_transform
    sha256: str

    @property
    def rows(self) -> int:
        return len(self.frame)

    @cached_property
    def model_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and target in model space (pipeline.transform), computed once: every
        walk-forward fold cuts its windows from them."""
        return (transform.model_values(self.frame[self.features], self.transform, self.where),
                transform.model_values(self.frame[[self.target]], self.transform, self.where))

    @cached_property
    def prices(self) -> np.ndarray:
        """The target in price units, what every metric is computed in."""
        prices: np.ndarray = self.frame[self.target].to_numpy()
        return prices


def read_table(data_cfg: DictConfig) -> Table:
    """The target and feature columns of the data of `data_cfg` (values checked by pipeline.checks),
    with their fingerprint: what training and `lstmlab forecast` both start from."""
    where = data_cfg.path if data_cfg.source == "csv" else f"the {data_cfg.source} data"
    table, features, target = select_columns(source_frame(data_cfg), data_cfg, where)
    name = data_cfg.get("target_transform", "none")  # none in configs logged before it existed
    return Table(table, features, target, where, name, fingerprint(table))


def training_table(data_cfg: DictConfig) -> Table:
    """`read_table`, with enough rows for windows of `data.lookback` and a train, val and test part."""
    table = read_table(data_cfg)
    if table.rows < data_cfg.lookback + transform.leading_rows(table.transform) + 3:
        raise LstmlabError(
            f"{table.where} has {count(table.rows, 'usable row')}: too few for windows of "
            f"data.lookback={data_cfg.lookback} with a train, val and test part"
        )
    return table


def fitted_scaler(scaler_cfg: DictConfig, values: np.ndarray) -> TransformerMixin:
    """The scikit-learn scaler of `data.scaler` (a class pipeline.checks allows) fitted on
    `values`; scikit-learn checks its arguments when it fits: a bad one is one line."""
    try:
        return instantiate(scaler_cfg).fit(values)
    except (InstantiationException, ValueError, TypeError) as error:
        raise LstmlabError(f"data.scaler cannot be fitted: {first_line(error)}") from None


def check_moves(table: Table, fit_rows: np.ndarray, fit_values: np.ndarray, test_rows: np.ndarray) -> None:
    """A target that never moves is one line before any run: on the training part its scaler has
    no range (the model learns nothing), and on the test part the naive forecast is exact, so
    test_skill (1 − test_rmse / naive_test_rmse) would be NaN or −inf with no word."""
    span = float(np.ptp(fit_values))
    if not span > 10 * np.finfo(np.float64).eps * max(1.0, float(np.abs(fit_values).max())):  # scikit-learn's "constant"
        what = "its day-over-day log return is" if table.transform == "log_return" else "it is"
        raise LstmlabError(
            f"{table.where}: the target {table.target} does not move on the training part ({_span(table, fit_rows)}: "
            f"{what} {float(fit_values.flat[0]):g} every day), so it cannot be scaled and there is nothing to learn; "
            "train on prices that move")
    prices = table.prices
    if len(test_rows) and np.array_equal(prices[test_rows], prices[test_rows - 1]):
        raise LstmlabError(
            f"{table.where}: the target {table.target} does not move on the test part ({_span(table, test_rows)}: "
            f"{float(prices[test_rows[0]]):g} every day), so the naive forecast is exact there and test_skill "
            "(1 − test_rmse / naive_test_rmse) has no value; test on days when prices move")


def _span(table: Table, rows: np.ndarray) -> str:
    dates = table.frame.index[rows]
    first, last = (d.date() if hasattr(d, "date") else d for d in (dates[0], dates[-1]))
    return f"{len(rows)} days, {first} … {last}"


def make_dataset(
    table: Table, data_cfg: DictConfig, train_rows: np.ndarray, val_rows: np.ndarray, test_rows: np.ndarray
) -> Dataset:
    """Windows for the given row positions; the scalers see the training rows only."""
    lookback, name = data_cfg.lookback, table.transform
    first = lookback + transform.leading_rows(name)  # first row with a full window of model values
    if not (train_rows >= first).any():  # no training window at all
        raise LstmlabError(
            f"data.lookback={lookback} is too long: the training part has {count(len(train_rows), 'row')} "
            f"of {table.rows}; use a shorter lookback or more data"
        )
    # Plain arrays, not frames: a forecast on a CSV with other column spellings must still work.
    feature_values, target_values = table.model_values
    fit_rows = train_rows[train_rows >= transform.leading_rows(name)]
    check_moves(table, fit_rows, target_values[fit_rows], test_rows)
    feature_scaler = fitted_scaler(data_cfg.scaler, feature_values[fit_rows])
    target_scaler = fitted_scaler(data_cfg.scaler, target_values[fit_rows])
    x_all = windows(feature_scaler.transform(feature_values), lookback)[:-1]
    y_all = target_scaler.transform(target_values).astype(np.float32)[lookback:]
    frame, prices = table.frame, table.prices

    def part(rows: np.ndarray) -> Part:
        rows = rows[rows >= first]  # earlier rows only ever serve as inputs
        return Part(
            x=x_all[rows - lookback],
            y=y_all[rows - lookback],
            dates=frame.index[rows],
            actual=prices[rows],
            previous=prices[rows - 1],
        )

    return Dataset(
        train=part(train_rows),
        val=part(val_rows),
        test=part(test_rows),
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
        features=table.features,
        target=table.target,
        sha256=table.sha256,
        table=table.frame,
        target_transform=name,
    )
