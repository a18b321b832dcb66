"""Data: loading, validation, chronological split, train-only scaling, windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import make_config
from lstmlab.errors import LstmlabError
from lstmlab.pipeline.checks import check_config
from lstmlab.pipeline.data import holdout_dataset, synthetic_prices


def data_cfg(*overrides: str):
    return make_config("data=synthetic", "data.rows=300", "data.lookback=10", *overrides).data


def write_csv(frame: pd.DataFrame, path="prices.csv") -> str:
    frame.to_csv(path, index=False)
    return str(path)


def csv_cfg(path: str, *overrides: str):
    return make_config("data=csv", f"data.path={path}", "data.lookback=10", *overrides).data


def test_split_is_chronological_and_every_target_lies_in_its_own_part():
    data = holdout_dataset(data_cfg())
    train, val, test = data.train, data.val, data.test
    assert train.dates.max() < val.dates.min() and val.dates.max() < test.dates.min()
    # 300 rows: 240 train rows (the first 10 only as inputs), 30 val, 30 test
    assert (len(train.y), len(val.y), len(test.y)) == (230, 30, 30)
    assert data.features == ["Close"] and data.target == "Close"


def test_windows_hold_the_lookback_rows_before_their_target():
    cfg = data_cfg()
    data = holdout_dataset(cfg)
    close = synthetic_prices(rows=300, seed=0)["Close"].to_numpy()
    scaled = data.feature_scaler.transform(close.reshape(-1, 1)).ravel()
    first_test_row = 270
    np.testing.assert_allclose(data.test.x[0, :, 0], scaled[first_test_row - 10:first_test_row], rtol=1e-6)
    assert data.test.actual[0] == close[first_test_row]
    assert data.test.previous[0] == close[first_test_row - 1]
    np.testing.assert_allclose(data.to_price(data.test.y[:, 0]), data.test.actual, rtol=1e-5)


def test_scaler_sees_only_the_training_part(tmp_path):
    """Changing every price after the training part changes neither the scaler nor the train windows."""
    frame = synthetic_prices(rows=300, seed=0).reset_index()
    original = holdout_dataset(csv_cfg(write_csv(frame, tmp_path / "a.csv")))
    future = frame.copy()
    future.loc[240:, "Close"] *= 50  # a wild future: any leak would move the scaler
    leaked = holdout_dataset(csv_cfg(write_csv(future, tmp_path / "b.csv")))
    assert original.feature_scaler.data_max_ == pytest.approx(leaked.feature_scaler.data_max_)
    assert original.target_scaler.data_min_ == pytest.approx(leaked.target_scaler.data_min_)
    np.testing.assert_array_equal(original.train.x, leaked.train.x)
    np.testing.assert_array_equal(original.train.y, leaked.train.y)
    assert original.feature_scaler.data_max_[0] == pytest.approx(frame["Close"][:240].max())
    assert original.sha256 != leaked.sha256


def test_sp500_is_read_offline_from_arch():
    data = holdout_dataset(make_config().data)
    assert data.train.dates[0] >= pd.Timestamp("1999-01-01")
    assert data.test.dates[-1] == pd.Timestamp("2018-12-31")
    assert data.train.x.shape[1:] == (60, 1)
    assert len(data.train.y) + len(data.val.y) + len(data.test.y) == 5031 - 60


def test_csv_columns_match_case_insensitively_dates_are_found_and_sorted(tmp_path):
    frame = synthetic_prices(rows=200, seed=1).reset_index()
    frame.columns = ["date", "close", "volume"]
    frame["ticker"] = "XYZ"  # extra columns are ignored
    shuffled = frame.sample(frac=1.0, random_state=0)
    path = write_csv(shuffled, tmp_path / "p.csv")
    data = holdout_dataset(csv_cfg(path, "data.features=[Close,Volume]"))
    assert data.features == ["close", "volume"] and data.target == "close"
    assert data.train.x.shape[2] == 2
    assert data.test.dates.is_monotonic_increasing
    assert data.test.actual[-1] == pytest.approx(frame["close"].iloc[-1])


def test_an_explicit_date_column_and_formatted_numbers(tmp_path):
    frame = synthetic_prices(rows=120, seed=2).reset_index()
    frame = pd.DataFrame({"When": frame["Date"].dt.strftime("%Y-%m-%d"),
                          "Price": [f"${v:,.2f}" for v in frame["Close"] * 100]})
    path = write_csv(frame, tmp_path / "p.csv")
    data = holdout_dataset(csv_cfg(path, "data.date_column=when", "data.target=price", "data.features=null"))
    assert data.test.actual[-1] == pytest.approx(float(frame["Price"].iloc[-1].strip("$").replace(",", "")))


@pytest.mark.parametrize("policy, expected_rows", [("drop", 199), ("ffill", 200)])
def test_nan_policies(tmp_path, policy, expected_rows):
    frame = synthetic_prices(rows=200, seed=3).reset_index()
    frame.loc[50, "Close"] = np.nan
    path = write_csv(frame, tmp_path / "p.csv")
    data = holdout_dataset(csv_cfg(path, f"data.nan_policy={policy}"))
    assert len(data.train.y) + len(data.val.y) + len(data.test.y) == expected_rows - 10


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns=["Close"]), "data.target='Close': no such column"),
        (lambda f: f.assign(Close=f["Close"].astype(object).where(f.index != 7, "abc")), "not numbers at lines 9 "),
        (lambda f: f.assign(Close=f["Close"].where(f.index != 7)), "missing values in Close on 2000-01-12"),
        (lambda f: f.rename(columns={"Date": "when"}), "no date column found"),
        (lambda f: f.head(12), "too few for windows"),
    ],
)
def test_bad_csv_names_the_problem(tmp_path, change, message):
    path = write_csv(change(synthetic_prices(rows=200, seed=4).reset_index()), tmp_path / "p.csv")
    with pytest.raises(LstmlabError, match=message):
        holdout_dataset(csv_cfg(path))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(LstmlabError, match="data file not found: nowhere.csv"):
        holdout_dataset(csv_cfg("nowhere.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LstmlabError, match="empty.csv is empty"):
        holdout_dataset(csv_cfg(str(tmp_path / "empty.csv")))


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.lookback=0", "data.lookback=0 must be a whole number"),
        ("data.lookback=250", "data.lookback=250 is too long"),
        ("data.test_fraction=0", "data.test_fraction=0 must be between 0 and 1"),
        ("data.val_fraction=0.9", "leaves nothing to train on"),
    ],
)
def test_bad_split_and_lookback_values(override, message):
    cfg = make_config("data=synthetic", "data.rows=300", "data.lookback=10", override)
    with pytest.raises(LstmlabError, match=message):
        check_config(cfg)  # the values: before any data are read_table
        holdout_dataset(cfg.data)  # what depends on the data's rows


def test_synthetic_data_need_their_rows_and_seed():
    for key in ("rows", "seed"):
        with pytest.raises(LstmlabError) as caught:
            check_config(make_config("data=synthetic", f"~data.{key}"))
        assert str(caught.value) == f"data.{key} is missing from the config; set data.{key}=..."
