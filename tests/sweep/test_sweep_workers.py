"""Several `lstmlab train -m` workers on one study in the real PostgreSQL server (127.0.0.1:5432,
user postgres, trust auth): together they run exactly n_trials, no trial number twice.

Skipped when no server answers, unless $CI is set (then it fails)."""

from __future__ import annotations

import re
import subprocess

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import LSTMLAB, TINY, postgres_databases

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FINISHED_LINE = re.compile(r"^\[sweep workers\] trial (\d+) (COMPLETE|PRUNED|FAIL) ", re.MULTILINE)


@pytest.fixture
def postgres_url():
    """A throwaway database on the server, dropped afterwards."""
    with postgres_databases("lstmlab_sweep") as (url,):
        yield url


def test_two_workers_share_one_study_and_run_exactly_n_trials(postgres_url):
    n_trials = 4
    command = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY, "model.units=[4,4]",
               "trainer.epochs=1", "hydra.sweeper.study_name=workers",
               f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.storage={postgres_url}",
               "model.dropout=interval(0,0.5)", "optimizer=choice(adam,rmsprop)"]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]

    study = optuna.load_study(study_name="workers",
                              storage=postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    found = study.get_trials()
    assert sorted(t.number for t in found) == list(range(n_trials))  # exactly n_trials, once each
    assert all(t.state == TrialState.COMPLETE for t in found)
    ran = [int(n) for out, _ in outputs for n, _ in FINISHED_LINE.findall(out)]
    assert sorted(ran) == list(range(n_trials))  # each trial ran in one worker only
    assert len({t.params["model.dropout"] for t in found}) == n_trials  # no draw repeated

    client = MlflowClient()
    experiment = client.get_experiment_by_name("lstmlab")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.optuna_study = 'workers'")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(int(c.data.tags["optuna_trial"]) for c in children) == list(range(n_trials))
    assert parent.info.status == "FINISHED"
    assert all(c.info.status == "FINISHED" for c in children)
