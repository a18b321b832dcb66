"""Target transform: what the model sees and predicts (`data.target_transform`), and the way back
to prices, shared by training (pipeline.data) and `lstmlab forecast` (records.forecast).

- `none`: price levels in, the next price out (the seed document's setup).
- `log_return`: every input column as its day-over-day log return, the next day's log return of
  the target out; the price forecast is `last price × exp(predicted return)`, so every metric
  stays in price units against the same naive forecast (tomorrow = today).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmlab.errors import LstmlabError


def leading_rows(name: str) -> int:
    """Rows at the start with no model value: a return needs the day before."""
    return 1 if name == "log_return" else 0


def model_values(table: pd.DataFrame, name: str, where: str) -> np.ndarray:
    """The table's columns in model space, row by row; the first `leading_rows` rows are NaN."""
    values: np.ndarray = table.to_numpy(dtype=np.float64)
    if name == "none":
        return values
    bad = table.index[(values <= 0).any(axis=1)]
    if len(bad):
        shown = ", ".join(str(pd.Timestamp(day).date()) for day in bad[:5])
        raise LstmlabError(
            f"{where}: data.target_transform=log_return needs positive values in "
            f"{', '.join(map(str, table.columns))}; not so on {shown}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""))
    returns = np.full_like(values, np.nan)
    returns[1:] = np.log(values[1:] / values[:-1])
    return returns


def to_price(predicted: np.ndarray, previous: np.ndarray | float | None, name: str) -> np.ndarray:
    """Model outputs (unscaled) as prices: levels as they are, returns applied to the last price."""
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if name == "none":
        return predicted
    if previous is None:
        raise ValueError("a log-return forecast needs the previous price")
    return np.asarray(previous, dtype=np.float64) * np.exp(predicted)
