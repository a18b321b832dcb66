"""A sweep's confirm stage (hydra.sweeper.confirm.top_k/seeds) as a user runs it: real processes,
tiny data, the real Optuna storage and MLflow store of the test's folder; a second worker on the
real PostgreSQL server."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import TINY, postgres_databases, tiny_config
from hydra_plugins.lstmlab_optuna_sweeper._settings import resolve_confirm
from lstmlab.comparison.compare import compare
from lstmlab.comparison.verdict import verdict_head
from lstmlab.errors import LstmlabError
from lstmlab.pipeline.params import run_params
from lstmlab.sweep.link import ConfirmLink

LSTMLAB = [sys.executable, "-m", "lstmlab.cli"]
SWEEP = [*LSTMLAB, "train", "-m", "hparams_search=variants", *TINY, "model.units=[4,4]", "loss=mse",
         "hydra.sweeper.max_failure_rate=1.0"]
VERDICT_LINE = re.compile(r"^\[sweep (\S+)\] (trial \d+ confirmed: test RMSE \S+ % \[\S+, \S+\] vs the baseline "
                          r"over \d+ seeds \(better\)|no trial beats the baseline beyond seed noise .*)$", re.MULTILINE)


def confirm_runs(study: str) -> tuple[mlflow.entities.Run, list[mlflow.entities.Run]]:
    client = MlflowClient()
    experiment = client.get_experiment_by_name("lstmlab")
    (parent,) = client.search_runs([experiment.experiment_id], f"tags.optuna_study = '{study}'")
    children = client.search_runs([experiment.experiment_id], max_results=1000,
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    return parent, [c for c in children if "optuna_trial" not in c.data.tags]


def what(run: mlflow.entities.Run) -> tuple[str, str]:
    """(the trial it retrains or 'baseline', its seed)."""
    tags = run.data.tags
    return ("baseline" if tags.get("confirm.baseline") == "true" else tags["confirm.trial"],
            run.data.params["trainer.seed"])


def running() -> list:
    return mlflow.search_runs(search_all_experiments=True, filter_string="attributes.status = 'RUNNING'",
                              output_format="list")


@pytest.mark.slow
def test_the_best_trials_and_the_baseline_retrain_on_fresh_seeds_resume_after_ctrl_c_and_end_on_compares_verdict():
    command = [*SWEEP, "hydra.sweeper.study_name=confirmed", "hydra.sweeper.n_trials=3",
               "hydra/launcher=parallel", "hydra.launcher.n_jobs=2",
               "hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=2"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said = []
    for line in sweep.stdout:
        said.append(line)
        if "] confirm 1/6: " in line:
            sweep.send_signal(signal.SIGINT)  # Ctrl-C once the first confirm run has ended
            break
    rest, err = sweep.communicate(timeout=600)
    said.append(rest)
    assert sweep.returncode == 130, err[-3000:]
    assert "] confirm: 2 trials × 2 seeds + baseline × 2 = 6 runs on seeds 1, 2" in "".join(said)  # cost first
    assert running() == []  # the interrupted confirm runs ended KILLED
    _, before = confirm_runs("confirmed")
    assert 1 <= sum(r.info.status == "FINISHED" for r in before) < 6

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"\] confirm: \d of 6 runs finished before: training the other \d", resumed.stdout)
    parent, runs = confirm_runs("confirmed")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 6 and running() == []
    done = Counter(what(r) for r in finished)
    trials = sorted({t for t, _ in done if t != "baseline"}, key=int)
    assert len(trials) == 2 and set(done.values()) == {1}  # each (configuration, seed) finished once
    assert {seed for _, seed in done} == {"1", "2"}  # fresh: never the sweep's seed (42)
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)

    # the parent's verdict is compare's on the same runs
    comparison = compare(experiment="lstmlab", sweep="confirmed", confirm=True)
    groups = comparison.groups[comparison.groups["group"].str.startswith("trial ")].sort_values("rmse_change")
    best = groups.iloc[0]
    tags = MlflowClient().get_run(parent.info.run_id).data.tags
    assert tags["confirm.best_trial"] == best["group"].split()[1]
    assert tags["confirm.verdict"] == verdict_head(best["verdict"])
    assert float(tags["confirm.effect"]) == pytest.approx(best["rmse_change"], rel=1e-5)
    assert float(tags["confirm.effect_low"]) == pytest.approx(best["rmse_change_low"], rel=1e-5)
    assert float(tags["confirm.mde"]) == pytest.approx(best["mde"], rel=1e-5)
    assert "confirm_report.txt" in {a.path for a in MlflowClient().list_artifacts(parent.info.run_id)}
    last = resumed.stdout.strip().splitlines()
    verdicts = VERDICT_LINE.findall(resumed.stdout)
    assert len(verdicts) == 1 and any(line.endswith(verdicts[0][1]) for line in last[-15:])

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # nothing left to train
    assert again.returncode == 0, again.stderr[-3000:]
    assert "] confirm: all 6 runs have finished" in again.stdout
    assert len(confirm_runs("confirmed")[1]) == len(runs)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_one_study_train_each_confirm_run_once_and_top_k_beyond_the_study_uses_what_there_is():
    with postgres_databases("lstmlab_confirm") as (url,):
        command = [*SWEEP, "hydra.sweeper.study_name=pair", "hydra.sweeper.n_trials=2",
                   f"hydra.sweeper.storage={url}", "hydra.sweeper.confirm.top_k=5", "hydra.sweeper.confirm.seeds=2"]
        workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(2)]
        outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    out = "".join(o for o, _ in outputs)
    assert "hydra.sweeper.confirm.top_k=5 but the study has 2 distinct complete configurations: confirming those" in out
    _, runs = confirm_runs("pair")
    assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)  # 2 trials × 2 + baseline × 2
    assert set(Counter(what(r) for r in runs).values()) == {1}  # no confirm run twice
    assert len(VERDICT_LINE.findall(out)) == 2  # each worker ends on the same verdict
    assert len(set(v for _, v in VERDICT_LINE.findall(out))) == 1


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "line"), [
    ("hydra.sweeper.confirm.seeds=1",
     "hydra.sweeper.confirm.seeds=1 must be a whole number of at least 2: a verdict needs the spread of two seeds or more"),
    ("hydra.sweeper.confirm.baseline='model.units=[4'",
     "hydra.sweeper.confirm.baseline='model.units=[4' is not a list of overrides (e.g. variant=baseline): "),
    ("hydra.sweeper.confirm.baseline='variant=baseline,tanh'",
     "hydra.sweeper.confirm.baseline: variant=baseline,tanh sweeps; the baseline is one configuration"),
    ("hydra.sweeper.confirm.baseline='variant=nosuch'",
     "hydra.sweeper.confirm.baseline='variant=nosuch' does not compose: "),
], ids=["one-seed", "unparsable", "a-sweep", "no-such-variant"])
def test_a_bad_confirm_setting_is_one_line_before_any_trial(setting, line):
    result = subprocess.run([*SWEEP, "hydra.sweeper.study_name=bad", "hydra.sweeper.confirm.top_k=2", setting],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()
    assert len(last) == 1 and last[0].startswith(f"lstmlab train: error: {line}"), result.stderr[-2000:]
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_a_confirm_link_travels_as_an_override_and_stays_out_of_the_runs_params():
    link = ConfirmLink(parent_run_id="abc123", trial=17, seed=3)
    cfg = tiny_config(link.override())
    assert ConfirmLink.from_config(cfg.confirm) == link
    assert cfg.confirm.folder == "confirm-trial-17-seed-3" == link.name
    assert link.tags == {"confirm.trial": "17"}
    assert ConfirmLink("abc123", None, 3).tags == {"confirm.baseline": "true"}
    assert not any(key.startswith("confirm") for key in run_params(cfg))  # how it was reached is no param
    with pytest.raises(LstmlabError, match="not set by a sweep's confirm stage"):
        ConfirmLink.from_config(OmegaConf.create({"seed": 3}))


def test_fresh_seeds_skip_the_sweeps_own_and_the_baseline_is_the_fixed_overrides_plus_the_given_ones():
    composed = []

    def compose(overrides):
        composed.append(list(overrides))
        return tiny_config(*overrides)

    options = OmegaConf.create({"top_k": 3, "seeds": 3, "baseline": "variant=tanh trainer.epochs=1"})
    settings = resolve_confirm(options, ["trainer.seed=2"], compose)
    assert settings.seeds == (1, 3, 4) and settings.on
    assert settings.baseline == ("variant=tanh", "trainer.epochs=1")
    assert composed == [["trainer.seed=2", "variant=tanh", "trainer.epochs=1"]]
    off = resolve_confirm(OmegaConf.create({"top_k": 0, "seeds": 5, "baseline": None}), [], compose)
    assert not off.on and off.seeds == ()
