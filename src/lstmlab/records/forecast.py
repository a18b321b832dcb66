"""Forecast: the next-step price from a logged model.

The run's own record supplies everything: the model (MLflow keras flavor), the scalers fitted
on its training part (a walk-forward run's last fold), and its config (data, lookback, target
transform: with log returns the forecast is the last price × exp(predicted return)). The last `lookback` rows of the data
(the run's own, or a CSV with the same columns) go in; the price for the next trading day comes
out, beside the naive forecast (tomorrow = today) that every run is measured against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.pipeline import transform
from lstmlab.pipeline.data import read_table
from lstmlab.plural import count
from lstmlab.records import store as records
from lstmlab.runtime import import_keras, use_backend


@dataclass(frozen=True)
class Forecast:
    run_id: str
    run_name: str
    model_uri: str
    data: str  # where the inputs came from
    target: str
    last_date: pd.Timestamp
    next_date: pd.Timestamp  # the next trading day on `calendar`
    calendar: str  # "NYSE", or "business days" for the synthetic data (generated on weekdays)
    price: float  # the model's forecast
    naive: float  # the last price: the persistence forecast


def forecast(run_id: str, data_path: str | None = None) -> Forecast:
    """The model of `run_id` applied to the last `lookback` rows of its data (or of `data_path`)."""
    run = records.get_run(run_id)
    run_id = run.info.run_id  # the full id, when a prefix was given
    cfg = records.load_config(run, "know its data and lookback")
    uri = records.model_uri(run)
    scalers = records.load_scalers(run)
    data_cfg = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=True))
    assert isinstance(data_cfg, DictConfig)  # made from a mapping (OmegaConf's type covers lists)
    if data_path:  # the file itself is checked as any data.path is
        data_cfg.source, data_cfg.path = "csv", data_path
    else:
        records.check_data_file(data_cfg, run_id, "give the data with --data PATH")

    table = read_table(data_cfg)
    lookback, name, where = int(cfg.data.lookback), table.transform, table.where
    needed = lookback + transform.leading_rows(name)  # a return needs the day before its window
    if table.rows < needed:
        raise LstmlabError(f"{where} has {count(table.rows, 'usable row')}; the model needs the last {needed} "
                           f"(data.lookback{' + 1 for log returns' if needed > lookback else ''})")
    recent = table.frame.iloc[-needed:]
    inputs = transform.model_values(recent[table.features], name, where)[-lookback:]
    feature_scaler = scalers["features"]
    if hasattr(feature_scaler, "feature_names_in_"):  # fitted on a DataFrame: give it its own names
        inputs = pd.DataFrame(inputs, columns=list(feature_scaler.feature_names_in_))
    x = feature_scaler.transform(inputs).astype(np.float32)[np.newaxis]

    use_backend(cfg.trainer.backend)  # before mlflow.keras imports Keras
    import_keras()
    model = records.load_model(run, uri)  # in Keras' safe mode
    scaled = model.predict(x, verbose=0)
    unscaled = scalers["target"].inverse_transform(np.asarray(scaled).reshape(-1, 1))
    last_price = float(table.frame[table.target].iloc[-1])
    price = float(transform.to_price(unscaled, last_price, name)[0])  # as training rebuilt prices
    if not math.isfinite(price):
        raise LstmlabError(f"the model of run {run_id} forecast {price}: it did not train to finite weights")
    last_date = pd.Timestamp(table.frame.index[-1])
    synthetic = data_cfg.source == "synthetic"
    return Forecast(
        run_id=run_id,
        run_name=run.info.run_name,
        model_uri=uri,
        data=where,
        target=table.target,
        last_date=last_date,
        next_date=last_date + pd.offsets.BDay(1) if synthetic else next_trading_day(last_date),
        calendar="business days" if synthetic else "NYSE",
        price=price,
        naive=last_price,
    )


def next_trading_day(day: pd.Timestamp) -> pd.Timestamp:
    """The New York Stock Exchange's next session after `day`: weekends, holidays and one-off
    closures (e.g. 2018-12-05) skipped, from `exchange_calendars`' XNYS rules (computed locally,
    no network). Past the years those rules cover: the next business day."""
    import warnings

    import exchange_calendars

    day = pd.Timestamp(day)
    day = (day.tz_localize(None) if day.tzinfo else day).normalize()
    try:
        with warnings.catch_warnings():  # its pandas deprecation warnings are not ours to act on
            warnings.simplefilter("ignore")
            calendar = exchange_calendars.get_calendar(
                "XNYS", start=day - pd.Timedelta(days=7), end=day + pd.Timedelta(days=31))
        return pd.Timestamp(calendar.date_to_session(day + pd.Timedelta(days=1), direction="next"))
    except (exchange_calendars.errors.DateOutOfBounds, ValueError):
        return day + pd.offsets.BDay(1)
