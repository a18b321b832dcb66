"""Concurrent campaigns train each configuration once (issue 23, item 4): two identical
`tracking.skip_finished=true` multiruns started together each trained every configuration. The
claim (pipeline.claim) is raced by real processes on a real SQLite and PostgreSQL store, and two
real `lstmlab train -m` commands are started together on one store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import LSTMLAB, TINY, postgres_databases
from lstmlab.pipeline.claim import KEY_TAG, TICKET_TAG, Claim, Yielded
from lstmlab.tracking.open import open_store
from lstmlab.tracking.orphans import CLOSED, HOST, PID, START, owner_tags

# Each process claims the same keys, all starting at one moment; it keeps what it won RUNNING
# (its own process alive) until the test has counted.
CLAIMANT = textwrap.dedent("""
    import json, sys, time
    from mlflow import MlflowClient
    from lstmlab.pipeline.claim import Claim, Yielded
    from lstmlab.tracking.open import open_store
    from lstmlab.tracking.orphans import owner_tags

    uri, experiment_id, start_at, keys = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    open_store(uri)
    client = MlflowClient()
    won = []
    while time.time() < start_at:
        time.sleep(0.005)
    for k in range(keys):
        claim = Claim(experiment_id, f"key-{k}", lambda: None)
        run_id = client.create_run(experiment_id, tags={**owner_tags(), **claim.tags}).info.run_id
        try:
            claim.hold(run_id)
            won.append(k)
        except Yielded:
            client.set_terminated(run_id, "KILLED")
            client.delete_run(run_id)
    print(json.dumps(won), flush=True)
    sys.stdin.read()
""")


def race(uri: str, claimants: int = 3, keys: int = 12) -> list[list[int]]:
    """What each of `claimants` processes won of the same `keys`, claimed at the same moment."""
    uri = open_store(uri)  # PostgreSQL: with the driver named (psycopg2)
    experiment_id = MlflowClient(uri).create_experiment("claims")
    start_at = time.time() + 8  # once every process has imported MLflow and opened the store
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMANT, uri, experiment_id, str(start_at), str(keys)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(claimants)]
    try:
        won = [json.loads(process.stdout.readline() or "null") for process in processes]
        assert None not in won, [p.stderr.read()[-2000:] for p in processes if p.poll() is not None]
        running = MlflowClient(uri).search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
        assert sorted(int(r.data.tags[KEY_TAG].split("-")[1]) for r in running) == list(range(keys))
        return won
    finally:
        for process in processes:
            process.communicate(timeout=60)


def assert_each_key_won_once(won: list[list[int]], keys: int = 12) -> None:
    assert sorted(k for claimant in won for k in claimant) == list(range(keys)), won


@pytest.mark.slow
def test_processes_racing_for_the_same_configurations_on_sqlite_win_each_once(project_dir):
    assert_each_key_won_once(race(f"sqlite:///{project_dir / 'claims.db'}"))


@pytest.mark.slow
@pytest.mark.postgres
def test_processes_racing_for_the_same_configurations_on_postgresql_win_each_once():
    with postgres_databases("lstmlab_claims") as (url,):
        assert_each_key_won_once(race(url))


def test_a_twin_whose_process_has_gone_is_closed_and_a_live_one_is_waited_for(project_dir):
    uri = os.environ["MLFLOW_TRACKING_URI"]
    open_store(uri)
    client = MlflowClient()
    experiment_id = client.create_experiment("claims")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim = Claim(experiment_id, "key", lambda: None)
    dead = client.create_run(experiment_id, tags={**claim.tags, TICKET_TAG: "1", HOST: owner_tags()[HOST],
                                                  PID: gone.stdout.strip(), START: "1"}).info.run_id
    mine = client.create_run(experiment_id, tags={**owner_tags(), **claim.tags}).info.run_id
    claim.hold(mine)  # the dead twin's ticket was smaller, but it will never end
    assert client.get_run(dead).info.status == "KILLED"
    assert client.get_run(dead).data.tags[CLOSED] == f"process {gone.stdout.strip()} on {owner_tags()[HOST]} had gone"
    assert client.get_run(mine).data.tags[TICKET_TAG] == "2"

    later = client.create_run(experiment_id, tags={**owner_tags(), **claim.tags}).info.run_id  # this process: alive
    with pytest.raises(Yielded) as yielded:
        claim.hold(later)
    assert yielded.value.holder == mine
    client.set_terminated(mine, "FINISHED")
    assert claim.wait_for(mine) is True  # its result is there to reuse
    stopped = client.create_run(experiment_id, tags=claim.tags).info.run_id
    client.set_terminated(stopped, "KILLED")
    assert claim.wait_for(stopped) is False  # claim again


def test_a_configuration_that_finished_meanwhile_is_reused_not_trained(project_dir):
    """Between a job's first FINISHED look-up and its claim, a twin may finish: the claim looks again."""
    uri = os.environ["MLFLOW_TRACKING_URI"]
    open_store(uri)
    client = MlflowClient()
    experiment_id = client.create_experiment("claims")
    claim = Claim(experiment_id, "key", lambda: "a-finished-run")
    run_id = client.create_run(experiment_id, tags={**owner_tags(), **claim.tags}).info.run_id
    with pytest.raises(Yielded) as yielded:
        claim.hold(run_id)
    assert yielded.value.holder == "a-finished-run"


JOB_LINE = re.compile(r"^job (\d): custom ([0-9a-f]{8})( \(reused\))? ", re.MULTILINE)


@pytest.mark.slow
def test_two_identical_campaigns_started_together_train_each_configuration_once(project_dir):
    command = [*LSTMLAB, "train", "-m", *TINY, "model.units=[4]", "trainer.backend=jax",
               "trainer.seed=1,2", "tracking.skip_finished=true"]
    campaigns = [subprocess.Popen([*command, f"hydra.sweep.dir=experiments/sweeps/{name}"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for name in ("first", "second")]
    outputs = [campaign.communicate(timeout=600) for campaign in campaigns]
    for campaign, (_, err) in zip(campaigns, outputs):
        assert campaign.returncode == 0, err[-3000:]
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list", run_view_type=ViewType.ALL)
    trained = [r for r in runs if r.info.lifecycle_stage == "active"]
    assert sorted(r.data.params["trainer.seed"] for r in trained) == ["1", "2"]  # one FINISHED run per seed
    assert {r.info.status for r in trained} == {"FINISHED"}
    assert {r.info.status for r in runs if r.info.lifecycle_stage == "deleted"} <= {"KILLED"}  # claims given up
    jobs = [{int(n): (run, bool(reused)) for n, run, reused in JOB_LINE.findall(out)} for out, _ in outputs]
    assert jobs[0].keys() == jobs[1].keys() == {0, 1}
    for n in (0, 1):  # the same result in both; trained by one, reused by the other
        assert jobs[0][n][0] == jobs[1][n][0] and sorted([jobs[0][n][1], jobs[1][n][1]]) == [False, True]
    said = "\n".join(out for out, _ in outputs)
    assert said.count("trained by another command at the same time; not trained again") + said.count(
        "this configuration has a FINISHED run on these data; not trained again") == 2
