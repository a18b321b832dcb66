"""A sweep whose PostgreSQL storage goes away mid-sweep (issue 15): a restart is ridden out, an
outage longer than `hydra.sweeper.storage_retry_s` stops the sweep with one line, nothing is left
RUNNING, and the same command resumes the study.

The tests start a PostgreSQL cluster of their own (initdb into a temp folder, pg_ctl on a free
port, as the `postgres` OS user), so they can stop and start it. Skipped when that is not possible
(not root, no PostgreSQL binaries), unless $CI is set.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from conftest import LSTMLAB, TINY

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SWEEP = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY,
         "model.units=[4]", "model.dropout=interval(0,0.5)", "hydra.sweeper.heartbeat_interval=1"]


@dataclass
class Cluster:
    data: Path
    port: int
    pg_ctl: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/optuna"

    def ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1"
        subprocess.run(["runuser", "-u", "postgres", "--", self.pg_ctl, "-D", str(self.data), "-w", "-s",
                        "-l", str(self.data.parent / "server.log"), "-o", options, *args],
                       check=True, timeout=60)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def cluster():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if os.geteuid() != 0 or not binaries or shutil.which("runuser") is None:
        _unavailable("a PostgreSQL cluster of the test's own needs root, runuser and /usr/lib/postgresql")
    folder = Path(tempfile.mkdtemp(prefix="lstmlab-pg-"))
    postgres = pwd.getpwnam("postgres")
    os.chown(folder, postgres.pw_uid, postgres.pw_gid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Cluster(folder / "data", port, binaries[-1])
    initdb = str(Path(server.pg_ctl).with_name("initdb"))
    subprocess.run(["runuser", "-u", "postgres", "--", initdb, "-D", str(server.data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True, timeout=120)
    server.ctl("start")
    try:
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE optuna")
        admin.close()
        yield server
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", server.pg_ctl, "-D", str(server.data), "-s",
                        "-m", "immediate", "stop"], timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_training(sweep: subprocess.Popen, trial: int) -> None:
    """Until the sweep's trial `trial` has logged an epoch to MLflow (its job is mid-training)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert sweep.poll() is None, sweep.communicate()[1][-3000:]
        try:
            runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                      filter_string=f"tags.optuna_trial = '{trial}' and attributes.status = 'RUNNING'")
        except mlflow.exceptions.MlflowException:  # the store is being created by the sweep
            runs = []
        if runs and mlflow.MlflowClient().get_metric_history(runs[0].info.run_id, "train_loss"):
            return
        time.sleep(0.5)
    raise AssertionError("the trial never started training")


def _trials(cluster: Cluster) -> list[optuna.trial.FrozenTrial]:
    url = cluster.url.replace("postgresql://", "postgresql+psycopg2://")
    return optuna.load_study(study_name="outage", storage=url).get_trials()


def _running_runs() -> list:
    return mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="attributes.status = 'RUNNING'")


def test_a_restart_mid_sweep_is_ridden_out(cluster):
    command = [*SWEEP, "trainer.epochs=30", "hydra.sweeper.study_name=outage", "hydra.sweeper.n_trials=2",
               f"hydra.sweeper.storage={cluster.url}"]
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_training(sweep, 0)
        cluster.ctl("-m", "fast", "stop")  # every connection is cut; the job reports each epoch
        time.sleep(5)
        cluster.ctl("start")
        out, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "does not answer" in out and "answers again" in out, out[-3000:]
    trials = _trials(cluster)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, [t.user_attrs for t in trials]
    assert _running_runs() == []


def test_an_outage_past_the_retry_time_stops_with_one_line_and_the_same_command_resumes(cluster):
    command = [*SWEEP, "hydra.sweeper.study_name=outage", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.storage_retry_s=3", f"hydra.sweeper.storage={cluster.url}"]
    sweep = subprocess.Popen([*command, "trainer.epochs=100000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_training(sweep, 0)
        cluster.ctl("-m", "fast", "stop")
        out, err = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 2, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith(f"lstmlab train: error: the Optuna storage postgresql+psycopg2://postgres@127.0.0.1:"
                               f"{cluster.port}/optuna did not answer for 3 s")
    assert "rerun the same command" in lines[0]
    assert _running_runs() == []  # the trial's run and the parent: closed in MLflow

    cluster.ctl("start")
    resumed = subprocess.run([*command, "trainer.epochs=1"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "] finished: 2/2 trials (2 complete" in resumed.stdout
    states = [t.state for t in _trials(cluster)]
    assert TrialState.RUNNING not in states and states.count(TrialState.COMPLETE) == 2
    assert _running_runs() == []
