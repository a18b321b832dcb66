"""Compare when artifacts or the report folder fail: real tampered files in a real store, a real
full filesystem (a small tmpfs mounted by the test, where it may mount one), a folder in the way.

- A predictions.csv that does not parse whole is refused for that run, named by id and called
  damaged (a missing one is called missing), never cached, never partly read: the run is left out
  of the model tests (MCS, SPA), while its recorded test RMSE still counts in its group's verdict;
  once repaired it is read again.
- The report folder is written whole or not at all: a full disk or a folder that cannot be
  written is one line, exit status 2, no folder, no empty runs.csv.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from compare_store import Store, final_metrics
from mlflow import MlflowClient
from test_compare import shocks

from lstmlab.cli import main as cli_main
from lstmlab.comparison.compare import compare
from lstmlab.comparison.predictions import Damaged, parse

SEEDS = (1, 2, 3)
# group → how its seed-2 run's predictions.csv is spoiled (`None`: removed)
SPOILED = {
    "cut_row": lambda text: text[: len(text) - 12],  # cut in the middle of the last row
    "cut_date": lambda text: text[: text.index("2018-02-1") + 9],  # cut inside a date
    "columns": lambda text: text.replace("date,actual,predicted", "date,actual,forecast", 1),
    "rows": lambda text: "".join(text.splitlines(keepends=True)[:-20]),  # whole rows gone: a clean cut
    "missing": None,
}


def artifact_path(run_id: str) -> Path:
    uri = MlflowClient().get_run(run_id).info.artifact_uri
    return Path(unquote(urlparse(uri).path)) / "predictions.csv"


@pytest.fixture
def spoiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """This test's store: a baseline and one group per kind of damage, three seeds each, with the
    seed-2 run of each damaged group spoiled on disk, as a failed upload or a full disk leaves it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store()
    ids = {name: [store.log(name, s, final_metrics(1.0, s), errors=(1.5 if name == "cut_row" else 1.0) * shocks(s))
                  for s in SEEDS] for name in SPOILED}
    ids["baseline"] = [store.log("baseline", s, final_metrics(1.0, s), errors=shocks(s)) for s in SEEDS]
    originals = {}
    for name, spoil in SPOILED.items():
        path = artifact_path(ids[name][1])
        originals[name] = path.read_text()
        if spoil is None:
            path.unlink()
        else:
            path.write_text(spoil(originals[name]))
    return {"ids": ids, "originals": originals, "cache": tmp_path / "cache" / "lstmlab" / "predictions"}


@pytest.mark.slow
def test_damaged_predictions_are_refused_by_run_and_a_repaired_one_is_read_again(spoiled, capsys):
    ids, cache = spoiled["ids"], spoiled["cache"]
    result = compare()
    groups = result.groups.set_index("group")
    notes = " ".join(result.notes)
    for name in SPOILED:
        run_id = ids[name][1]
        state = "missing" if name == "missing" else "damaged"
        assert groups.loc[name, "n"] == 3  # the verdict reads the recorded test RMSE: every seed counts
        assert f"run {run_id}: its predictions.csv is damaged" in notes if state == "damaged" else run_id in notes
        assert not (cache / run_id).exists()  # nothing damaged is cached
        assert result.runs.set_index("run_id")["in_mcs"].isna()[run_id]
    assert "No predictions.csv in 1 run (no model test: MCS, SPA): " + ids["missing"][1] in notes
    assert groups.loc["cut_row", "verdict"] == "worse"  # 1.5 times the baseline's errors: known without the file
    assert "damaged" not in next(n for n in result.notes if n.startswith("No predictions.csv"))
    for name, why in (("cut_row", "cut short"), ("cut_date", "cut short"), ("columns", "columns date,actual,forecast"),
                      ("rows", "its 40 rows give test RMSE")):
        assert f"run {ids[name][1]}: its predictions.csv is damaged ({why}" in notes
    assert (cache / ids["baseline"][0] / "predictions.npy").exists()  # the intact ones are

    assert cli_main(["compare"]) == 0
    out = capsys.readouterr().out
    assert "Refused 4 damaged predictions.csv" in out.replace("\n", " ")

    Path(artifact_path(ids["cut_row"][1])).write_text(spoiled["originals"]["cut_row"])  # repaired
    MlflowClient().log_artifact(ids["missing"][1], str(_copy(spoiled["originals"]["missing"])))  # put back
    again = compare()
    runs = again.runs.set_index("run_id")
    assert runs["in_mcs"].notna()[ids["cut_row"][1]] and runs["in_mcs"].notna()[ids["missing"][1]]  # examined now
    assert again.groups.set_index("group").loc["cut_row", "verdict"] == "worse"
    assert (cache / ids["cut_row"][1] / "predictions.npy").exists()


def _copy(text: str) -> Path:
    path = Path("repaired") / "predictions.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("date,actual,predicted\n", "no rows"),
        ("date,actual,predicted\n2018-01-02,1.0,1.5\n2018-01-03,2.0", "cut short"),
        ("date,actual,predicted\n2018-01-02,1.0\n", "line 2 has 2 fields, the header 3"),
        ("date,actual,predicted\n2018-01,1.0,1.5\n", "'2018-01' is not a date"),
        ("date,actual,predicted\n2018-01-02,1.0,abc\n", "could not convert string to float: 'abc'"),
        ("date,actual,predicted\n2018-01-02,1.0,nan\n", "not a finite number"),
        ("date,actual,predicted\n2018-01-02,1.0,1.5\n2018-01-02,1.0,1.5\n", "a day twice"),
        ("Date,Close\n2018-01-02,1.0\n", "columns Date,Close"),
        ("date,actual,predicted,predicted\n2018-01-02,1.0,1.5,1.5\n", "columns"),
    ],
)
def test_a_predictions_csv_parses_whole_or_says_where_it_does_not(text, why):
    with pytest.raises(Damaged, match=why.replace("(", r"\(")):
        parse(text)


def test_an_intact_predictions_csv_parses_to_its_rows_in_date_order_with_their_folds():
    table = parse("date,actual,predicted,naive,fold\n2018-01-03,2.0,2.5,1.0,2\n2018-01-02,1.0,1.5,0.5,1\n", 0.5)
    assert table["actual"].tolist() == [1.0, 2.0] and table["naive"].tolist() == [0.5, 1.0]
    assert table["fold"].tolist() == [1, 2]
    old = parse("date,actual,predicted,naive\n2018-01-02,1.0,1.5,0.5\n")  # recorded before holdout runs wrote it
    assert old["fold"].tolist() == [1]
    with pytest.raises(Damaged, match="a fold that is not a whole number from 1"):
        parse("date,actual,predicted,fold\n2018-01-02,1.0,1.5,0\n")
    with pytest.raises(Damaged, match="rows give test RMSE 0.5, the run recorded 0.6"):
        parse("date,actual,predicted\n2018-01-02,1.0,1.5\n", 0.6)


# ---- the report folder -----------------------------------------------------------------------


def small_store() -> None:
    store = Store()
    for name in ("baseline", "tanh"):
        for seed in SEEDS:
            store.log(name, seed, final_metrics(1.0, seed), errors=(1.2 if name == "tanh" else 1.0) * shocks(seed))


def report_runs() -> list:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lstmlab")
    return client.search_runs([experiment.experiment_id], "tags.`lstmlab.report` = 'true'")


def assert_one_line_and_nothing_written(capsys, reports: Path, cause: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("lstmlab compare: error: cannot write the report into experiments/reports: "), err
    assert cause in err and err.endswith("(no report written)\n") and err.count("\n") == 1
    assert not list(reports.rglob("runs.csv")) and not [p for p in reports.rglob("*") if p.is_dir()]
    assert not report_runs()


@contextmanager
def mounted_tmpfs(folder: Path, options: str) -> Iterator[None]:
    """A small tmpfs of its own at `folder` for the test (a real full or read-only filesystem);
    skipped where the test may not mount one (not root, no mount namespace rights)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.slow
def test_a_full_disk_leaves_no_report_folder_and_no_empty_runs_csv(project_dir, capsys):
    small_store()
    capsys.readouterr()  # MLflow's own lines from making the store
    reports = project_dir / "experiments" / "reports"
    with mounted_tmpfs(reports, "size=16k"):  # room for the CSVs and report.md, not for the chart
        assert cli_main(["compare"]) == 2
        assert_one_line_and_nothing_written(capsys, reports, "No space left on device")
    assert cli_main(["compare"]) == 0  # with room again: one whole report
    (folder,) = reports.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["chart.png", "groups.csv", "report.md", "runs.csv"]


@pytest.mark.slow
def test_a_folder_that_cannot_be_written_is_one_line(project_dir, capsys):
    small_store()
    capsys.readouterr()  # MLflow's own lines from making the store
    reports = project_dir / "experiments" / "reports"
    with mounted_tmpfs(reports, "ro,size=64k"):
        assert cli_main(["compare"]) == 2
        assert_one_line_and_nothing_written(capsys, reports, "Read-only file system")


@pytest.mark.slow
def test_a_file_where_the_reports_folder_goes_is_one_line(project_dir, capsys):
    small_store()
    capsys.readouterr()  # MLflow's own lines from making the store
    reports = project_dir / "experiments" / "reports"
    reports.parent.mkdir()
    reports.write_text("not a folder")
    assert cli_main(["compare"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab compare: error: cannot write the report into experiments/reports: ")
    assert err.count("\n") == 1 and reports.read_text() == "not a folder" and not report_runs()


@pytest.mark.slow
def test_a_spoiled_cache_file_is_dropped_and_the_artifact_read_again(project_dir, monkeypatch):
    import numpy as np

    monkeypatch.setenv("XDG_CACHE_HOME", str(project_dir / "cache"))
    small_store()
    first = compare()
    cached = sorted((project_dir / "cache" / "lstmlab" / "predictions").glob("*/predictions.npy"))
    assert len(cached) == 6
    cached[0].write_bytes(cached[0].read_bytes()[:100])  # cut, as a full disk would have left it
    np.save(cached[1], np.zeros(3))  # a readable array of another layout
    again = compare()
    assert again.groups.equals(first.groups)
    assert all(np.load(path).dtype.names == ("day", "actual", "predicted", "naive", "fold") for path in cached[:2])
