"""Sweeps in a shared setting (issue 15): a password in the storage URL is written nowhere, and
two workers started together keep to their own output folders. Real processes, the real
PostgreSQL server (127.0.0.1:5432, trust auth: any password is accepted, which is enough to see
where it is written), the real MLflow store of the test's folder."""

from __future__ import annotations

import re
import subprocess
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from conftest import LSTMLAB, POSTGRES, TINY, postgres_databases

pytestmark = pytest.mark.slow

SWEEP = [*LSTMLAB, "train", "-m", "hydra/sweeper=lstmlab_optuna", *TINY, "model.units=[4]",
         "trainer.epochs=1", "model.dropout=interval(0,0.5)"]
TRIAL_LINE = re.compile(r"^\[sweep \S+\] trial (\d+) (?:COMPLETE|PRUNED|FAIL) ", re.MULTILINE)


@pytest.fixture
def url_with_password():
    """A throwaway database owned by a throwaway role that has a password, as a URL holding it."""
    import psycopg2

    password = f"PW{uuid.uuid4().hex}"
    role = f"lstmlab_pw_{uuid.uuid4().hex[:8]}"
    with postgres_databases("lstmlab_secret") as (url,):
        database = url.rsplit("/", 1)[1]
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **POSTGRES)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
                cursor.execute(f"ALTER DATABASE {database} OWNER TO {role}")
            yield f"postgresql://{role}:{password}@127.0.0.1:5432/{database}", password
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                cursor.execute(f"DROP ROLE IF EXISTS {role}")
            admin.close()


@pytest.mark.postgres
@pytest.mark.parametrize("launcher", [
    [],  # Hydra's basic launcher: the jobs run in the sweeper's process
    ["hydra/launcher=submitit_local", "hydra.sweeper.n_jobs=2"],  # SLURM's code path: pickled jobs, new processes
], ids=["basic", "submitit_local"])
def test_a_password_in_the_storage_url_is_written_nowhere(project_dir, url_with_password, launcher):
    url, password = url_with_password
    result = subprocess.run([*SWEEP, *launcher, "hydra.sweeper.study_name=secret", "hydra.sweeper.n_trials=2",
                             f"hydra.sweeper.storage={url}"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="secret", storage=url.replace("postgresql://", "postgresql+psycopg2://"))
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2  # the jobs reached it

    assert password not in result.stdout + result.stderr
    assert ":***@127.0.0.1" in result.stdout  # shown masked (the study line, Hydra's "#0 : ..." lines)
    written = [p for p in project_dir.rglob("*") if p.is_file()]
    assert any(p.name == "overrides.yaml" for p in written) and any(p.name == "mlflow.db" for p in written)
    assert [p for p in written if password.encode() in p.read_bytes()] == []
    # every file of the sweep, the MLflow store (sqlite, as bytes) and mlruns/ among them; the
    # trial's link names the storage, with its password dropped from the files Hydra wrote
    (overrides,) = {p for p in written if p.name == "overrides.yaml" and p.parent.parent.name == "0"}
    user = url.split("//")[1].split(":")[0]
    assert f"storage:postgresql+psycopg2://{user}@127.0.0.1:5432/" in overrides.read_text().replace("'", "")


def test_two_workers_started_together_keep_to_their_own_folders_and_tables(project_dir):
    # Both are given the same folder, as two workers started in the same second get the same
    # ${now:...} one: each must end up in a folder of its own.
    command = [*SWEEP, "hydra.sweeper.study_name=two", "hydra.sweeper.n_trials=4",
               "hydra.sweep.dir=experiments/sweeps/same"]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    ran = [sorted(int(n) for n in TRIAL_LINE.findall(out)) for out, _ in outputs]
    assert sorted(ran[0] + ran[1]) == [0, 1, 2, 3]  # the study's trials, each in one worker

    used = []
    for (out, _), trials in zip(outputs, ran):
        header, *rows = out.split("\nMultirun: ", 1)[1].splitlines()
        folder = project_dir / re.search(r"\(in (.+)\)$", header)[1]
        used.append(folder.name)
        assert (folder / "multirun.yaml").is_file()
        jobs = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
        assert jobs == trials  # its own trials' job folders, none of the other worker's
        assert sorted(int(n) for n in re.findall(r"^\s*trial (\d+) ", "\n".join(rows), re.MULTILINE)) == trials
    assert sorted(used) in (["same", f"same-{workers[0].pid}"], ["same", f"same-{workers[1].pid}"])
    assert sorted(p.name for p in (project_dir / "experiments/sweeps").iterdir()) == sorted(used)
