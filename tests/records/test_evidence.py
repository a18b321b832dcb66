"""`lstmlab evidence` on a really trained campaign: saved, moved to another folder (a clone elsewhere),
loaded into a fresh store, compared, resumed and saved again.

The campaign: baseline and tanh × seeds 1, 2, walk-forward with 2 folds of 1 epoch on the generated
series, and one run that diverges (FAILED, with non-finite metrics)."""

from __future__ import annotations

import dataclasses
import getpass
import re
import shutil
import socket
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from evidence_tables import assert_docs_table, markdown_tables, recomputed
from mlflow import MlflowClient

from conftest import own_store, tiny_config
from lstmlab.cli import main as cli_main
from lstmlab.comparison import campaign_table
from lstmlab.comparison.compare import compare
from lstmlab.errors import LstmlabError
from lstmlab.names import EVIDENCE_ID_TAG
from lstmlab.records.evidence_files import Campaign, read_campaign

pytestmark = pytest.mark.slow

EXPERIMENT = "tiny-campaign"
SETUP = ["evaluation=walk_forward", "evaluation.folds=2", "trainer.epochs=1", f"tracking.experiment={EXPERIMENT}"]
GROUPS = {"baseline": ["variant=baseline"], "tanh": ["variant=tanh"]}
SEEDS = (1, 2)
DIVERGES = ["optimizer=sgd", "optimizer.learning_rate=1e12", "trainer.seed=9"]
COMPARE = "--filter \"params.evaluation.name = 'walk_forward'\""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The campaign trained in `trained/`, saved there to evidence/tiny, and that folder copied to
    `clone/` and loaded into the store there."""
    from lstmlab.pipeline.experiment import run_experiment

    root = tmp_path_factory.mktemp("evidence")
    trained, clone = root / "trained", root / "clone"
    trained.mkdir()
    with own_store(trained) as uri:
        ids = {(name, seed): run_experiment(tiny_config(*SETUP, *overrides, f"trainer.seed={seed}")).run_id
               for name, overrides in GROUPS.items() for seed in SEEDS}
        with pytest.raises(LstmlabError, match="diverged"):
            run_experiment(tiny_config(*SETUP, *DIVERGES))
        assert cli_main(["evidence", "save", "evidence/tiny", "--experiment", EXPERIMENT]) == 0
    made = read_campaign(trained / "evidence" / "tiny")
    assert made == Campaign(name="tiny", experiment=EXPERIMENT)  # what a user fills in next:
    (trained / "evidence" / "tiny" / "campaign.yaml").write_text(dataclasses.replace(made, compare=COMPARE).text())
    shutil.copytree(trained / "evidence", clone / "evidence")
    with own_store(clone) as clone_uri:
        assert cli_main(["evidence", "load", "evidence/tiny"]) == 0
    return {"root": root, "trained": trained, "clone": clone, "uri": uri, "clone_uri": clone_uri, "ids": ids}


def runs_of(uri: str) -> dict[str, mlflow.entities.Run]:
    """The experiment's runs in the store at `uri`, by their id in the records."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    return {run.data.tags.get(EVIDENCE_ID_TAG, run.info.run_id): run for run in runs}


def test_the_loaded_runs_are_the_trained_ones(campaign):
    trained, loaded = runs_of(campaign["uri"]), runs_of(campaign["clone_uri"])
    assert set(trained) == set(loaded) and len(trained) == 5
    assert sorted(run.info.status for run in loaded.values()) == ["FAILED", *["FINISHED"] * 4]
    client, clone_client = MlflowClient(campaign["uri"]), MlflowClient(campaign["clone_uri"])
    for record_id, original in trained.items():
        copy = loaded[record_id]
        assert copy.info.run_id != record_id and copy.info.artifact_uri.startswith(str(campaign["clone"]))
        assert (copy.info.run_name, copy.info.start_time, copy.info.end_time, copy.info.status) == \
            (original.info.run_name, original.info.start_time, original.info.end_time, original.info.status)
        assert copy.data.params == {k: v for k, v in original.data.params.items() if k != "tracking.uri"}
        assert {k: v for k, v in copy.data.tags.items() if k != EVIDENCE_ID_TAG and k != "mlflow.runName"} == \
            {k: v for k, v in original.data.tags.items() if not k.startswith(("lstmlab.", "mlflow.user", "mlflow.source.name",
                                                                            "mlflow.runName"))}
        for key in original.data.metrics:  # every point of every curve, NaN where training diverged
            before = [(m.step, m.value) for m in client.get_metric_history(record_id, key)]
            after = [(m.step, m.value) for m in clone_client.get_metric_history(copy.info.run_id, key)]
            assert repr(after) == repr(before), key
        digests = [[i.dataset.digest for i in run.inputs.dataset_inputs] for run in (original, copy)]
        assert digests[0] == digests[1] and digests[0]
    diverged = next(run for run in trained.values() if run.info.status == "FAILED")
    assert not (campaign["clone"] / "evidence" / "tiny" / "artifacts" / diverged.info.run_id).exists()


def test_compare_gives_the_same_groups_and_verdicts_on_the_loaded_store(campaign, monkeypatch):
    def compared(folder: Path, uri: str):
        monkeypatch.chdir(folder)
        mlflow.set_tracking_uri(uri)
        return compare(experiment=EXPERIMENT, cache=folder / "cache")

    original, loaded = compared(campaign["trained"], campaign["uri"]), compared(campaign["clone"], campaign["clone_uri"])
    columns = ["group", "n", "seeds", "test_rmse_mean", "test_rmse_sd", "p_value", "welch_p_holm", "rmse_change",
               "rmse_change_low", "rmse_change_high", "verdict"]
    pd.testing.assert_frame_equal(original.groups[columns], loaded.groups[columns], check_exact=True)
    assert loaded.groups["n"].tolist() == [2, 2, 0]  # the diverged run: a configuration whose one seed failed
    assert loaded.groups["verdict"].iloc[-1].startswith("no verdict (its one seed failed")
    assert (original.models.spa_p, original.models.naive_in_mcs) == (loaded.models.spa_p, loaded.models.naive_in_mcs)


def test_saving_the_loaded_store_again_writes_the_same_bytes_and_loading_again_adds_nothing(campaign, capsys):
    with own_store(campaign["clone"]):
        assert cli_main(["evidence", "save", "again/tiny", "--experiment", EXPERIMENT]) == 0
        said = capsys.readouterr().out
        assert cli_main(["evidence", "load", "evidence/tiny"]) == 0
        assert "0 runs added, 5 already there" in capsys.readouterr().out
    first, again = campaign["trained"] / "evidence" / "tiny", campaign["clone"] / "again" / "tiny"
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    different = [f for f in files if f.name != "campaign.yaml" and (first / f).read_bytes() != (again / f).read_bytes()]
    assert not different
    assert "Saved 5 runs of experiment 'tiny-campaign' (4 finished, 1 failed) to again/tiny/: 5 new" in said
    assert len(runs_of(campaign["clone_uri"])) == 5


def test_a_resume_on_the_loaded_store_trains_nothing(campaign, caplog):
    from lstmlab.pipeline.experiment import run_experiment

    loaded = runs_of(campaign["clone_uri"])
    caplog.set_level("INFO", logger="lstmlab")
    with own_store(campaign["clone"]):
        for (name, seed), record_id in campaign["ids"].items():
            result = run_experiment(tiny_config(*SETUP, *GROUPS[name], f"trainer.seed={seed}", "tracking.skip_finished=true"))
            assert result.reused and result.run_id == loaded[record_id].info.run_id, (name, seed)
    assert sum(r.getMessage().startswith("reused run") for r in caplog.records) == 4
    assert len(runs_of(campaign["clone_uri"])) == 5


def test_the_records_name_no_machine(campaign):
    machine = [str(campaign["root"]), str(Path.home()), socket.gethostname(), getpass.getuser()]
    for path in (campaign["trained"] / "evidence").rglob("*"):
        if path.is_file():
            text = path.read_text()
            found = [word for word in machine if re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text)]
            assert not found, f"{path.name} names {found}"
    assert all(path.suffix in (".yaml", ".jsonl", ".csv", ".json") for path in (campaign["trained"] / "evidence").rglob("*.*"))


def test_the_table_recomputed_from_the_records_is_the_one_of_the_trained_store(campaign, monkeypatch):
    folder = campaign["clone"] / "evidence" / "tiny"
    output = recomputed(folder)
    monkeypatch.chdir(campaign["trained"])
    mlflow.set_tracking_uri(campaign["uri"])
    original = compare(experiment=EXPERIMENT, filter_string="params.evaluation.name = 'walk_forward'",
                       cache=campaign["trained"] / "cache")
    table = campaign_table.markdown(original.groups)
    assert table in output and markdown_tables(output) == markdown_tables(table)
    assert "\n".join(campaign_table.lines_after(original)) in output  # naive, MCS, SPA, notes: runs by their record ids
    assert f"`lstmlab compare --experiment {EXPERIMENT} {COMPARE}`" in output

    page = campaign["root"] / "evidence.md"  # a docs page with the table pasted, then one cell rounded
    rows = table.splitlines()
    page.write_text(f"# Evidence\n\n## Campaign: tiny\n\nText.\n\n{table}\n\nMore text.\n")
    assert_docs_table(folder, page, heading="Campaign: tiny")
    mean = re.search(r"\| (\d+\.\d+) ± ", rows[2])[1]
    page.write_text(page.read_text().replace(f"| {mean} ±", f"| {float(mean):.1f} ±", 1))
    assert_docs_table(folder, page, heading="Campaign: tiny")  # fewer digits, the same number
    page.write_text(page.read_text().replace(f"| {float(mean):.1f} ±", f"| {float(mean) + 0.2:.1f} ±", 1))
    with pytest.raises(AssertionError, match="row 1"):
        assert_docs_table(folder, page, heading="Campaign: tiny")


def test_a_loaded_run_reruns_from_its_record_and_forecast_says_why_it_has_no_model(campaign, capsys):
    folder = campaign["root"] / "rerun"
    shutil.copytree(campaign["trained"] / "evidence", folder / "evidence")
    with own_store(folder) as uri:
        assert cli_main(["evidence", "load", "evidence/tiny"]) == 0
        run_id = runs_of(uri)[campaign["ids"][("tanh", 1)]].info.run_id
        capsys.readouterr()
        assert cli_main(["rerun", run_id, "--check"]) == 0  # config.yaml and the data are enough
        assert "All 10 checked metrics identical" in capsys.readouterr().out
        assert cli_main(["forecast", run_id]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lstmlab forecast: error: run {run_id} (tanh) was loaded from a campaign's records, which keep no model; "
        f"`lstmlab rerun {run_id}` trains it again from its config.yaml, then forecast the new run")
