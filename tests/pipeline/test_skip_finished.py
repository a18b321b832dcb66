"""Resumable campaigns (issue 17, items 1 and 2): `tracking.skip_finished=true` reuses a FINISHED
run of the same configuration and data instead of training it again, and a multirun says how far
it is (`job k/N done · r reused · ETA ...`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import mlflow
import pytest
from hydra import compose, initialize_config_dir

from conftest import LSTMLAB, TINY, tiny_config
from lstmlab.commands.hydra_compat import VERSION_BASE, empty_sweeps, planned_jobs
from lstmlab.commands.progress import duration, line
from lstmlab.paths import config_dir
from lstmlab.pipeline.experiment import run_experiment

TRAIN = [*LSTMLAB, "train"]
PROGRESS = re.compile(r"^job (\d+)/(\d+) done(?: · (\d+) reused)?(?: · ETA .+)?$", re.MULTILINE)


def finished_runs() -> list:
    return mlflow.search_runs(experiment_names=["lstmlab"], filter_string="attributes.status = 'FINISHED'",
                              output_format="list")


@pytest.mark.slow
def test_a_finished_configuration_is_reused_and_a_changed_one_is_trained(project_dir, caplog):
    first = run_experiment(tiny_config("tracking.skip_finished=true"))
    assert not first.reused

    caplog.set_level("INFO", logger="lstmlab")
    again = run_experiment(tiny_config("tracking.skip_finished=true", "tracking.run_name=again"))
    assert again.reused is True and again.run_id == first.run_id  # how it is recorded: no matter
    assert again.metrics["val_rmse"] == first.metrics["val_rmse"] and again.metrics["test_rmse"] == first.metrics["test_rmse"]
    reused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reused run")]
    assert reused == [f"reused run {first.run_id} (baseline): this configuration has a FINISHED run on these "
                      "data; not trained again (tracking.skip_finished=true)"]

    changed = {
        "config": tiny_config("tracking.skip_finished=true", "model.dropout=0.1"),
        "seed": tiny_config("tracking.skip_finished=true", "trainer.seed=7"),
        "data": tiny_config("tracking.skip_finished=true", "data.rows=250"),
        "evaluation": tiny_config("tracking.skip_finished=true", "evaluation=walk_forward", "evaluation.folds=2"),
    }
    for what, cfg in changed.items():
        result = run_experiment(cfg)
        assert not result.reused and result.run_id != first.run_id, what
    assert len(finished_runs()) == 1 + len(changed)


@pytest.mark.slow
def test_without_skip_finished_every_job_trains(project_dir):
    first = run_experiment(tiny_config())
    second = run_experiment(tiny_config())
    assert first.run_id != second.run_id and not second.reused


@pytest.mark.slow
def test_a_pruned_or_killed_run_is_never_reused(project_dir):
    first = run_experiment(tiny_config("tracking.skip_finished=true"))
    client = mlflow.MlflowClient()
    client.set_tag(first.run_id, "state", "pruned")  # what a pruned sweep trial carries
    second = run_experiment(tiny_config("tracking.skip_finished=true"))
    assert not second.reused
    client.set_terminated(second.run_id, "KILLED")
    third = run_experiment(tiny_config("tracking.skip_finished=true"))
    assert not third.reused and third.run_id not in (first.run_id, second.run_id)


@pytest.mark.slow
def test_an_interrupted_multirun_started_again_trains_only_the_rest(project_dir):
    """A real Ctrl-C after the first job; the same command again reuses what finished."""
    command = [*TRAIN, "-m", "trainer.seed=1,2,3", "variant=baseline,tanh", *TINY, "tracking.skip_finished=true"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for text in first.stdout:
        seen.append(text)
        if PROGRESS.match(text.strip()):  # the first job has ended and been counted
            first.send_signal(signal.SIGINT)
            break
    out, err = first.communicate(timeout=300)
    assert first.returncode == 130, err[-3000:]
    assert "job 1/6 done" in "".join(seen) and "job 6/6" not in out
    done_before = {r.info.run_id for r in finished_runs()}
    assert 1 <= len(done_before) < 6

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    reused = set(re.findall(r"^reused run ([0-9a-f]{32}) ", again.stdout, re.MULTILINE))
    assert reused == done_before
    counts = [(int(k), int(n), int(r or 0)) for k, n, r in PROGRESS.findall(again.stdout)]
    assert [k for k, _, _ in counts] == [1, 2, 3, 4, 5, 6] and {n for _, n, _ in counts} == {6}
    assert counts[-1][2] == len(done_before)
    table = again.stdout.split("Multirun: ", 1)[1]
    assert table.startswith(f"6 runs recorded, {len(done_before)} reused")
    assert sum(row.rstrip().endswith(" yes") for row in table.splitlines()) == len(done_before)

    runs = finished_runs()  # one FINISHED run per configuration (variant × seed), nothing trained twice
    assert sorted((r.data.tags["variant"], r.data.params["trainer.seed"]) for r in runs) == \
        sorted((v, s) for v in ("baseline", "tanh") for s in ("1", "2", "3"))
    statuses = [r.info.status for r in mlflow.search_runs(experiment_names=["lstmlab"], output_format="list")]
    assert "RUNNING" not in statuses


@pytest.mark.slow
def test_a_run_on_another_backend_is_not_reused_and_the_job_says_why(project_dir):
    jax = subprocess.run([*TRAIN, *TINY, "trainer.backend=jax"], capture_output=True, text=True, timeout=300)
    assert jax.returncode == 0, jax.stderr[-3000:]
    (jax_run,) = finished_runs()
    tf = subprocess.run([*TRAIN, *TINY, "tracking.skip_finished=true"], capture_output=True, text=True, timeout=300)
    assert tf.returncode == 0, tf.stderr[-3000:]
    said = [text for text in tf.stdout.splitlines() if text.startswith("not reused")]
    assert said == [f"not reused: run {jax_run.info.run_id} has this configuration on these data, trained on jax; this "
                    "job trains on tensorflow (the backends compute differently; trainer.backend=jax would reuse it)"]
    assert len(finished_runs()) == 2


@pytest.mark.slow
def test_skip_finished_on_a_store_that_cannot_be_read_is_one_line(project_dir):
    (project_dir / "mlflow.db").write_bytes(b"this is not a database" * 100)
    uri = f"sqlite:///{project_dir / 'mlflow.db'}"
    result = subprocess.run([*TRAIN, *TINY, "tracking.skip_finished=true"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("lstmlab train: error: ") and "mlflow.db" in result.stderr
    assert "epoch" not in result.stdout  # nothing trained


def test_skip_finished_must_be_true_or_false(project_dir):
    result = subprocess.run([*TRAIN, *TINY, "tracking.skip_finished=maybe"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "lstmlab train: error: tracking.skip_finished='maybe' must be true or false"


@pytest.mark.parametrize(("overrides", "jobs", "empty"), [
    (["variant=glob(*)", "trainer.seed=1,2"], 22, []),
    (["variant=baseline,tanh", "trainer.seed=range(1,4)", "trainer.epochs=2"], 6, []),
    (["variant=tanh"], 1, []),
    (["variant=glob(nomatch*)", "trainer.seed=1,2"], 0, ["variant=glob(nomatch*)"]),
    (["trainer.seed=range(1,4)", "trainer.seed=range(3,1)"], 0, ["trainer.seed=range(3,1)"]),  # the last one counts
])
def test_a_multirun_knows_how_many_jobs_hydras_basic_sweeper_launches(overrides, jobs, empty):
    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        from hydra.core.global_hydra import GlobalHydra  # the loader compose uses, as in a real multirun
        from hydra.types import RunMode

        cfg = GlobalHydra.instance().config_loader().load_configuration(
            "train", overrides=list(overrides), run_mode=RunMode.MULTIRUN)
        assert planned_jobs(cfg) == jobs
        assert empty_sweeps(cfg) == empty  # what the line refusing a multirun of no job names
        optuna = compose("train", overrides=["hparams_search=variants"], return_hydra_config=True)
        assert planned_jobs(optuna) is None  # the Optuna sweeper prints its own lines


def test_the_progress_line_counts_reused_and_failed_jobs_and_estimates_from_trained_ones():
    ended = [{"seconds": 0.1, "reused": True, "status": "COMPLETED"},
             {"seconds": 600.0, "reused": False, "status": "COMPLETED"},
             {"seconds": 1200.0, "reused": False, "status": "COMPLETED"},
             {"seconds": 3.0, "reused": False, "status": "FAILED"}]
    # 4 of 110 done; 106 left at 900 s each, 2 at a time: 53 rounds of 15 min = 13 h 15 min
    assert line(ended, total=110, parallel=2) == "job 4/110 done · 1 reused · 1 failed · ETA 13 h 15 min"
    assert line(ended[:1], total=3, parallel=1) == "job 1/3 done · 1 reused · ETA after the first trained job"
    assert line(ended[:2], total=2, parallel=1) == "job 2/2 done · 1 reused"
    assert [duration(s) for s in (12, 59.4, 60, 719, 3600, 4320)] == ["12 s", "59 s", "1 min", "12 min", "1 h 0 min",
                                                                       "1 h 12 min"]
