"""Campaign records on disk (lstmlab.records.evidence_files): a line round-trips exactly, nothing with
a password is written, and a damaged or partial folder is one line naming what is wrong, before
the store is touched. No training here: the records are made by hand (test_evidence.py trains)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from lstmlab.cli import main as cli_main
from lstmlab.records.evidence import portable_config
from lstmlab.records.evidence_files import (
    CAMPAIGN_FILE,
    RUNS_FILE,
    Campaign,
    RunRecord,
    parse_line,
    read,
    write,
)

SECRET = "s3cr3t-pw"
PREDICTIONS = "date,actual,predicted,naive,fold\n2018-01-02,1.0,1.5,0.9,1\n2018-01-03,1.2,1.1,1.0,2\n"


def record(run_id: str, start: int, **changes) -> RunRecord:
    fields = dict(
        id=run_id, name="baseline", status="FINISHED", start_time=start, end_time=start + 10,
        params={"trainer.seed": "1", "model.units": "[50, 50]"},
        tags={"variant": "baseline", "baseline": "true", "data_sha256": "d" * 64},
        metrics={"val_rmse": [(1, 2.5), (2, 2.25), (3, 2.0)], "test_rmse": [(3, 0.5)]},
        inputs=[{"name": "synthetic", "digest": "abc", "source_type": "local", "source": "{}", "schema": "",
                 "profile": "", "context": "training"}],
        artifacts=("config.yaml", "predictions.csv", "scaler.json"),
    )
    return RunRecord(**{**fields, **changes})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A whole campaign folder of two runs, as `lstmlab evidence save` writes one."""
    runs = [record("a" * 32, 1_700_000_000_000), record("b" * 32, 1_700_000_100_000, name="tanh")]
    files = {"config.yaml": b"tracking:\n  uri: null\n", "predictions.csv": PREDICTIONS.encode(), "scaler.json": b"{}"}
    where = tmp_path / "evidence" / "tiny"
    write(where, Campaign(name="tiny", experiment="tiny"), runs, {run.id: files for run in runs})
    return where


def test_a_line_round_trips_exactly_with_non_finite_values(folder):
    run = record("c" * 32, 5, metrics={"train_loss": [(1, math.nan), (2, math.inf), (3, -math.inf), (4, 0.1 + 0.2)]},
                 artifacts=())
    line = run.line()
    json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name} in a line: not JSON"))
    back = parse_line(line, "here")
    assert back.line() == line
    values = [value for _, value in back.metrics["train_loss"]]
    assert math.isnan(values[0]) and values[1:3] == [math.inf, -math.inf] and values[3] == 0.1 + 0.2


def test_a_folder_reads_back_as_written(folder):
    records = read(folder)
    assert records.campaign == Campaign(name="tiny", experiment="tiny")
    assert [run.id for run in records.runs] == ["a" * 32, "b" * 32]
    assert records.runs[1].metrics["val_rmse"] == [(1, 2.5), (2, 2.25), (3, 2.0)]
    assert not list(folder.rglob(".*.tmp"))  # each file renamed into place, nothing left beside


def test_nothing_with_a_password_is_written(tmp_path):
    url = f"postgresql://user:{SECRET}@db.example/mlflow"
    run = record("d" * 32, 1, params={"tracking.experiment": "x", "data.source": url},
                 tags={"note": f"from {url}?password={SECRET}"})
    where = tmp_path / "records"
    write(where, Campaign(name="x", experiment="x", train=f"MLFLOW_TRACKING_URI={url} lstmlab train"), [run],
          {run.id: {"config.yaml": f"tracking:\n  uri: {url}\n".encode(), "predictions.csv": PREDICTIONS.encode(),
                    "scaler.json": b"{}"}})
    written = {path.name: path.read_text() for path in where.rglob("*") if path.is_file()}
    assert set(written) == {CAMPAIGN_FILE, RUNS_FILE, "config.yaml", "predictions.csv", "scaler.json"}
    assert not [name for name, text in written.items() if SECRET in text]
    assert "user:***@db.example" in written[RUNS_FILE] and "user:***@db.example" in written["config.yaml"]


def test_a_value_that_looks_like_the_start_of_a_url_masks_nothing_in_the_next():
    """Masked value by value: over the whole compact line, `http://host:5000","b":"me@x` reads as a password."""
    tags = {"a.server": "http://host:5000", "b.mail": "me@example.org"}
    assert parse_line(record("e" * 32, 1, tags=tags).line(), "here").tags == tags


def test_the_store_uri_is_taken_out_of_config_yaml_and_nothing_else():
    text = "data:\n  path: null\ntracking:\n  uri: sqlite:////home/someone/project/mlflow.db\n  experiment: x\n" \
           "other:\n  uri: kept\n"
    assert portable_config(text) == "data:\n  path: null\ntracking:\n  uri: null\n  experiment: x\nother:\n  uri: kept\n"
    assert portable_config(portable_config(text)) == portable_config(text)


def _line(folder: Path, number: int, change) -> None:
    path = folder / RUNS_FILE
    lines = path.read_text().splitlines()
    lines[number - 1] = change(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


def _metric(text: str, value) -> str:
    body = json.loads(text)
    body["metrics"]["val_rmse"][1][1] = value
    return json.dumps(body)


def _status(text: str, status: str) -> str:
    return json.dumps({**json.loads(text), "status": status})


DAMAGES = {
    "no campaign.yaml": (lambda f: (f / CAMPAIGN_FILE).unlink(), "has no campaign.yaml"),
    "no runs.jsonl": (lambda f: (f / RUNS_FILE).unlink(), "runs.jsonl is missing"),
    "a line cut short": (lambda f: _line(f, 2, lambda t: t[: len(t) // 2]), "runs.jsonl line 2 does not parse as JSON"),
    "no artifacts folder": (lambda f: shutil.rmtree(f / "artifacts" / ("b" * 32)), f"artifacts/{'b' * 32}/ is missing"),
    "no predictions.csv": (lambda f: (f / "artifacts" / ("a" * 32) / "predictions.csv").unlink(),
                           f"artifacts/{'a' * 32}/predictions.csv is missing"),
    "a metric that is no number": (lambda f: _line(f, 1, lambda t: _metric(t, "abc")),
                                   "metric val_rmse at step 2 is 'abc', not a number"),
    "a bare NaN": (lambda f: _line(f, 1, lambda t: _metric(t, 7).replace(", 7]", ", NaN]")),
                   "metric val_rmse at step 2 is NaN (bare; a line writes \"NaN\"), not a number"),
    "an unknown status": (lambda f: _line(f, 2, lambda t: _status(t, "DONE")), "status 'DONE'"),
    "a RUNNING run": (lambda f: _line(f, 1, lambda t: _status(t, "RUNNING")), "status 'RUNNING'"),
    "a campaign.yaml of another format": (lambda f: (f / CAMPAIGN_FILE).write_text("format: 9\nexperiment: x\n"),
                                          "format 9"),
}


@pytest.mark.parametrize("command", ["load", "table"])
@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_records_are_one_line_naming_what_is_wrong_and_the_store_is_not_touched(
        folder, project_dir, command, damage, capsys):
    spoil, said = DAMAGES[damage]
    spoil(folder)
    assert cli_main(["evidence", command, str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lstmlab evidence: error: ") and said in err[0], err
    assert not (project_dir / "mlflow.db").exists() and not (project_dir / "mlruns").exists()


def test_a_folder_that_is_not_there_is_one_line(project_dir, capsys):
    assert cli_main(["evidence", "load", "evidence/nothing"]) == 2
    assert capsys.readouterr().err.strip() == "lstmlab evidence: error: no campaign folder evidence/nothing"
    assert not (project_dir / "mlflow.db").exists()


def test_save_without_runs_to_save_is_one_line(project_dir, capsys):
    from mlflow import MlflowClient

    assert cli_main(["evidence", "save", "evidence/x", "--experiment", "nowhere"]) == 2
    assert "no experiment named 'nowhere'" in capsys.readouterr().err
    client = MlflowClient()
    run = client.create_run(client.create_experiment("running"))  # still RUNNING: not a record yet
    assert cli_main(["evidence", "save", "evidence/x", "--experiment", "running"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lstmlab evidence: error: experiment 'running' in "
                   f"sqlite:///{project_dir / 'mlflow.db'} has no finished, failed or killed runs to save"]
    assert not (project_dir / "evidence").exists()

    client.set_terminated(run.info.run_id, "KILLED")
    (project_dir / "a-file").write_text("")
    assert cli_main(["evidence", "save", "a-file", "--experiment", "running"]) == 2
    assert capsys.readouterr().err.strip() == ("lstmlab evidence: error: cannot write the records to a-file: File exists "
                                               "(a-file); the records there are as they were")
    assert cli_main(["evidence", "save", "evidence/x", "--experiment", "running"]) == 0
    assert "Saved 1 run of experiment 'running' (1 killed) to evidence/x/: 1 new" in capsys.readouterr().out


def test_a_store_that_fails_midway_keeps_no_half_campaign(folder, project_dir, capsys):
    from mlflow import MlflowClient

    blocker = project_dir / "a-file"  # where the experiment's artifacts should go: no folder can be made
    blocker.write_text("")
    client = MlflowClient()
    experiment = client.create_experiment("tiny", artifact_location=(blocker / "artifacts").as_uri())
    capsys.readouterr()
    assert cli_main(["evidence", "load", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"while loading run {'a' * 32}; the 1 run(s) this load added are deleted again"), err
    assert client.search_runs([experiment]) == []
