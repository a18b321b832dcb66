"""Evaluation: how a run's data is cut into folds (`evaluation=holdout|walk_forward`); how the
folds' forecasts become the run's metrics is pipeline.metrics'.

Holdout is one chronological split (train | val | test). Walk-forward (rolling-origin evaluation,
Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, "time series cross-validation")
cuts the evaluation period (the last `data.test_fraction` of the rows, or `evaluation.test_size`
rows) into `evaluation.folds` consecutive, disjoint test windows; fold k trains on the rows before
its window only (val: their last `data.val_fraction`), with scalers fitted on its training rows.
The final metrics (pipeline.metrics) pool every fold's test forecasts, so `test_rmse` is the RMSE of every
predicted day; `val_rmse` is the mean of the folds' (what sweeps minimize).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.pipeline.data import Dataset, holdout_dataset, make_dataset, training_table
from lstmlab.plural import count


def method(cfg: DictConfig) -> str:
    """`holdout` or `walk_forward` (checked by pipeline.checks); a config recorded before
    evaluations existed is holdout."""
    name: str = OmegaConf.select(cfg, "evaluation.name", default="holdout")
    return name


def fold_rows(n_rows: int, data: DictConfig, evaluation: DictConfig) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Row positions (train, val, test) of each walk-forward fold, in time order.

    Not sklearn's TimeSeriesSplit: it needs test windows of one size and leaves the remainder of
    the evaluation period untested, so the pooled test days would not be the evaluation period
    (by default the very days a holdout run tests). `np.array_split` covers it exactly, window
    sizes differing by at most one row; `max_train_size` becomes the `sliding` window below.
    """
    # Values were checked by pipeline.checks; what depends on the data's rows is checked here.
    folds, window, test_size = evaluation.folds, evaluation.window, evaluation.test_size
    if test_size is None:
        period, source = round(n_rows * data.test_fraction), f"data.test_fraction={data.test_fraction}"
    else:
        period, source = test_size, f"evaluation.test_size={test_size}"
        if test_size >= n_rows:
            raise LstmlabError(f"evaluation.test_size={test_size} is too large: the data have {n_rows} "
                               f"rows, and the first fold needs some to train on")
    if folds > period:
        raise LstmlabError(f"evaluation.folds={folds} is too many: the evaluation period has "
                           f"{count(period, 'row')} ({source}), so at most {count(period, 'fold')}")
    start = n_rows - period
    result = []
    for test in np.array_split(np.arange(start, n_rows), folds):
        # sliding: the same number of rows as the first fold (sklearn's max_train_size)
        before = np.arange(0 if window == "expanding" else test[0] - start, test[0])
        n_val = round(len(before) * data.val_fraction)
        if not 0 < n_val < len(before):
            raise LstmlabError(f"data.val_fraction={data.val_fraction} of the {len(before)} rows before "
                               f"a test window leaves no val or no training part")
        result.append((before[:-n_val], before[-n_val:], test))
    return result


def splits(cfg: DictConfig) -> list[Dataset]:
    """The datasets a run trains on: one for holdout, one per fold for walk-forward.

    Cached per process on the data and evaluation settings: a sweep's preflight, its trials in
    the same process and a rerun read and cut the data once."""
    key = OmegaConf.to_yaml(cfg.data, resolve=True) + OmegaConf.to_yaml(cfg.get("evaluation") or {}, resolve=True)
    if key not in _CACHE:
        _CACHE.clear()  # one evaluation at a time keeps memory flat
        if method(cfg) == "holdout":
            _CACHE[key] = [holdout_dataset(cfg.data)]
        else:
            table = training_table(cfg.data)
            rows = fold_rows(table.rows, cfg.data, cfg.evaluation)
            _CACHE[key] = [make_dataset(table, cfg.data, *fold) for fold in rows]
    return _CACHE[key]


_CACHE: dict[str, list[Dataset]] = {}

