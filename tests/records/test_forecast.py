"""`lstmlab forecast` from a really trained and logged model."""

from __future__ import annotations

import math
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import mlflow.keras
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import train_in_own_store, use_store
from lstmlab.cli import main as cli_main
from lstmlab.pipeline.data import synthetic_prices
from lstmlab.pipeline.scalers import from_json
from lstmlab.records.forecast import forecast

ROWS = 240  # conftest's tiny synthetic series (data.seed 0)


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    logged = train_in_own_store(tmp_path_factory.mktemp("forecast"),
                                "model.units=[4,4]", "trainer.seed=3", "tracking.log_model=true")
    path = mlflow.artifacts.download_artifacts(
        run_id=logged["run_id"], artifact_path="predictions.csv", tracking_uri=logged["uri"])
    return {**logged, "predictions": pd.read_csv(path, index_col="date", parse_dates=True)}


@pytest.fixture
def store(logged: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    use_store(logged["uri"], monkeypatch)
    return logged


@pytest.mark.slow
def test_the_next_step_after_the_runs_own_data_is_the_model_on_its_last_window(store, capsys):
    prices = synthetic_prices(rows=ROWS, seed=0)
    result = forecast(store["run_id"])
    # the same price computed by hand: the logged scalers and model on the last lookback closes
    scalers = from_json(Path(mlflow.artifacts.download_artifacts(run_id=store["run_id"], artifact_path="scaler.json"))
                        .read_text())
    window = scalers["features"].transform(prices[["Close"]].tail(8).to_numpy())[np.newaxis].astype(np.float32)
    model = mlflow.keras.load_model(result.model_uri)
    expected = scalers["target"].inverse_transform(model.predict(window, verbose=0).reshape(-1, 1))[0, 0]
    assert math.isfinite(result.price) and result.price == pytest.approx(expected, rel=1e-6)
    assert result.naive == prices["Close"].iloc[-1]
    assert result.last_date == prices.index[-1]
    assert result.next_date == prices.index[-1] + pd.offsets.BDay(1)
    assert result.model_uri.startswith("models:/")

    assert cli_main(["forecast", store["run_id"][:8]]) == 0  # the short id of compare's tables
    out = capsys.readouterr().out
    assert f"{result.price:12.4f}" in out and f"{result.naive:12.4f}" in out
    assert result.next_date.strftime("%Y-%m-%d") in out


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_a_csv_ending_the_day_before_a_test_date_forecasts_what_the_run_predicted_for_it(store, project_dir):
    """The logged model and scaler reproduce the run's own prediction for its last test day."""
    predictions = store["predictions"]
    last_test_day = predictions.index[-1]
    prices = synthetic_prices(rows=ROWS, seed=0)
    before = prices.loc[prices.index < last_test_day].tail(20)
    # other spellings of the columns than the run's (Date, Close): matched case-insensitively
    path = project_dir / "prices.csv"
    before.rename(columns=str.lower).rename_axis("date").to_csv(path)

    result = forecast(store["run_id"], str(path))
    assert result.next_date == last_test_day
    assert result.naive == pytest.approx(predictions["naive"].iloc[-1], rel=1e-12)
    assert result.price == pytest.approx(predictions["predicted"].iloc[-1], rel=1e-5)


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_user_errors_are_one_line(store, project_dir, capsys):
    short = project_dir / "short.csv"
    synthetic_prices(rows=5).to_csv(short)
    mlflow.set_experiment("lstmlab")
    with mlflow.start_run(run_name="no-model") as bare:  # a record with config but no model
        mlflow.log_text(OmegaConf.to_yaml(store["config"], resolve=True), "config.yaml")
    cases = [
        (["0" * 32], "unknown run id"),
        ([bare.info.run_id], "has no logged model"),
        ([store["run_id"], "--data", str(project_dir / "missing.csv")], f"data file not found: {project_dir / 'missing.csv'}"),
        ([store["run_id"], "--data", str(project_dir)], f"data.path={project_dir} is a directory; give a CSV file in it"),
        ([store["run_id"], "--data", str(short)], "has 5 usable rows; the model needs the last 8"),
    ]
    capsys.readouterr()
    for args, message in cases:
        assert cli_main(["forecast", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("lstmlab forecast: error: ") and message in err, err
        assert err.count("\n") == 1


@contextmanager
def damaged(path: Path, content: bytes | None):
    """`path` overwritten with `content` (or deleted, with None) for the block, then restored."""
    backup = path.with_name(path.name + ".bak")
    shutil.move(path, backup)
    try:
        if content is not None:
            path.write_bytes(content)
        yield
    finally:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        shutil.move(backup, path)


def artifact(run_id: str, name: str) -> Path:
    return Path(urlparse(mlflow.get_run(run_id).info.artifact_uri).path) / name


def model_files(run_id: str) -> Path:
    from lstmlab.records.store import get_run, model_uri

    model_id = model_uri(get_run(run_id)).removeprefix("models:/")
    return Path(urlparse(mlflow.get_logged_model(model_id).artifact_location).path)


def one_error_line(capsys, command: str, args: list[str]) -> str:
    capsys.readouterr()
    assert cli_main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lstmlab {command}: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_damaged_or_deleted_records_are_one_line_and_start_no_run(store, capsys):
    run_id = store["run_id"]
    before = len(mlflow.search_runs(search_all_experiments=True))
    with damaged(artifact(run_id, "config.yaml"), b": : [\n"):
        for command in ("rerun", "forecast"):
            assert "its config.yaml is damaged (while parsing" in one_error_line(capsys, command, [run_id])
    with damaged(artifact(run_id, "config.yaml"), b"trainer: 3\n"):
        assert "the config has no data, model" in one_error_line(capsys, "rerun", [run_id])
    config = artifact(run_id, "config.yaml").read_text().replace("seed: 3", "seed: abc")
    with damaged(artifact(run_id, "config.yaml"), config.encode()):
        assert "trainer.seed='abc' must be a whole number" in one_error_line(capsys, "rerun", [run_id])
    with damaged(artifact(run_id, "scaler.json"), b"garbage"):
        assert "its scaler.json is damaged" in one_error_line(capsys, "forecast", [run_id])
    with damaged(model_files(run_id), None):
        assert "cannot be loaded: its files are missing or damaged" in one_error_line(capsys, "forecast", [run_id])
    with damaged(artifact(run_id, "scaler.json"), None):
        assert f"run {run_id} (baseline, FINISHED) has no scaler.json: cannot scale new data" in one_error_line(
            capsys, "forecast", [run_id])
    with damaged(artifact(run_id, ""), None):  # the run's whole artifact folder
        assert f"run {run_id} (baseline) has no artifacts left in " in one_error_line(capsys, "forecast", [run_id])
    assert len(mlflow.search_runs(search_all_experiments=True)) == before


@pytest.mark.slow  # shares a trained fixture with a slow test
def test_the_downloaded_records_are_removed_afterwards(store, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the downloads would stay
    forecast(store["run_id"])
    assert list(tmp_path.glob("lstmlab-*")) == []


@pytest.mark.parametrize("last, expected", [
    ("2018-12-31", "2019-01-02"),  # New Year's Day
    ("2018-12-04", "2018-12-06"),  # closed for President Bush's funeral
    ("2019-07-03", "2019-07-05"),  # Independence Day
    ("2026-11-25", "2026-11-27"),  # Thanksgiving
    ("2004-08-06", "2004-08-09"),  # a Friday: the weekend
])
def test_the_next_trading_day_follows_the_nyse_calendar(last, expected):
    import pandas as pd

    from lstmlab.records.forecast import next_trading_day

    assert next_trading_day(pd.Timestamp(last)) == pd.Timestamp(expected)
