"""Secrets never leave the process: a password typed in a tracking URL is searched for, after real
commands on the real PostgreSQL server and a real `mlflow server`, in every file they wrote, every
row of the MLflow store and every line they printed. A tracking URL that cannot be used is one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import LSTMLAB, POSTGRES, TINY, postgres_databases
from lstmlab.cli import main as cli_main
from lstmlab.secrets import MaskFilter, drop_passwords, mask
from lstmlab.tracking.uris import with_installed_driver

PASSWORD = "Pw-" + uuid.uuid4().hex[:10]  # found nowhere by chance


@pytest.mark.parametrize("text, masked, dropped", [
    ("postgresql://ann:s3cr3t@db:5432/mlflow", "postgresql://ann:***@db:5432/mlflow", "postgresql://ann@db:5432/mlflow"),
    ("http://:token@host:5000", "http://:***@host:5000", "http://@host:5000"),
    # as Hydra shows a multirun job's override, its colons escaped
    (r"tracking.uri=postgresql\://ann\:s3cr3t@db\:5432/x", r"tracking.uri=postgresql\://ann\:***@db\:5432/x",
     r"tracking.uri=postgresql\://ann@db\:5432/x"),
    ("cannot use postgresql://db/x?sslmode=require&password=s3:cr3t: refused",
     "cannot use postgresql://db/x?sslmode=require&password=***: refused",
     "cannot use postgresql://db/x?sslmode=require&password=***: refused"),
    ("a://u:one@h and b://v:two@k", "a://u:***@h and b://v:***@k", "a://u@h and b://v@k"),
    ("http://host:5000/runs/x@y user:pw@host postgresql://ann@db/x", None, None),  # no password in a URL
])
def test_the_password_of_every_url_in_a_text_is_masked_and_nothing_else(text, masked, dropped):
    assert mask(text) == (masked or text)
    assert drop_passwords(text) == (dropped or text)


def test_log_records_are_masked_with_their_arguments_and_traceback():
    try:
        raise ValueError("could not connect to postgresql://ann:s3cr3t@db/x")
    except ValueError:
        record = logging.getLogger("x").makeRecord("x", logging.ERROR, __file__, 1, "store %s failed", (
            "postgresql://ann:s3cr3t@db/x",), sys.exc_info())
    assert MaskFilter().filter(record)
    shown = logging.Formatter().format(record)
    assert "s3cr3t" not in shown and shown.startswith("store postgresql://ann:***@db/x failed")
    assert "could not connect to postgresql://ann:***@db/x" in shown


def test_a_plain_postgresql_url_names_the_installed_driver():
    assert with_installed_driver("postgresql://ann@db/x") == "postgresql+psycopg2://ann@db/x"
    for other in ("postgresql+psycopg2://ann@db/x", "sqlite:///mlflow.db", "http://host:5000", "mysql://db/x"):
        assert with_installed_driver(other) == other


def lstmlab(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run([*LSTMLAB, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
    return done


def files_with_password(folder: Path) -> list[str]:
    return [str(path.relative_to(folder)) for path in folder.rglob("*")
            if path.is_file() and PASSWORD.encode() in path.read_bytes()]


def rows_with_password(database: str) -> list[str]:
    """Every row of every table of the MLflow store, as JSON text, that holds the password."""
    import psycopg2

    with psycopg2.connect(dbname=database, **POSTGRES) as db, db.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [name for (name,) in cursor.fetchall()]
        assert "params" in tables and "runs" in tables
        found = []
        for table in tables:
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
            found += [f"{table}: {row}" for (row,) in cursor.fetchall() if PASSWORD in row]
    return found


@pytest.fixture
def role_with_password():
    """A PostgreSQL role with a password, owning a fresh database: (role, database). The server
    trusts local connections, so any password gets in; what matters is where it gets written."""
    import psycopg2

    role = f"lstmlab_secret_{uuid.uuid4().hex[:8]}"
    with postgres_databases("lstmlab_secrets") as [url]:  # dropped before the role that owns it
        database = url.rsplit("/", 1)[1]
        with psycopg2.connect(dbname="postgres", **POSTGRES) as admin, admin.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (PASSWORD,))
            cursor.execute(f"ALTER DATABASE {database} OWNER TO {role}")
        yield role, database
    admin = psycopg2.connect(dbname="postgres", **POSTGRES)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
    admin.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_a_password_in_a_postgresql_tracking_url_is_written_nowhere(role_with_password, tmp_path):
    role, database = role_with_password
    url = f"postgresql://{role}:{PASSWORD}@127.0.0.1:5432/{database}"  # plain: psycopg2 is named for it
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    # typed on the command line, in a multirun (Hydra prints and saves each job's overrides)
    trained = lstmlab("train", "-m", "trainer.seed=1,2", *TINY, "tracking.log_model=true", f"tracking.uri={url}",
                      cwd=tmp_path, env=env)
    assert "Multirun: 2 runs recorded" in trained.stdout
    assert f"tracking.uri=postgresql\\://{role}\\:***@127.0.0.1" in trained.stdout  # Hydra's job lines
    (sweep,) = (tmp_path / "experiments" / "sweeps").iterdir()
    overrides = (sweep / "0" / ".hydra" / "overrides.yaml").read_text()
    assert f"tracking.uri=postgresql\\://{role}@127.0.0.1" in overrides  # usable again with ~/.pgpass

    import mlflow

    client = mlflow.MlflowClient(url.replace("postgresql://", "postgresql+psycopg2://"))
    runs = client.search_runs([client.get_experiment_by_name("lstmlab").experiment_id])
    assert len(runs) == 2
    assert {run.data.params["tracking.uri"] for run in runs} == {f"postgresql://{role}:***@127.0.0.1:5432/{database}"}
    run_id = runs[0].info.run_id

    # read back with the password in the environment: a rerun takes its store from today's environment
    # (docs/reliability.md, Credentials)
    env["MLFLOW_TRACKING_URI"] = url
    rerun = lstmlab("rerun", run_id, "--check", cwd=tmp_path, env=env)
    assert "All 10 checked metrics identical" in rerun.stdout
    forecast = lstmlab("forecast", run_id, cwd=tmp_path, env=env)
    assert "Next-step forecast of Close" in forecast.stdout

    assert files_with_password(tmp_path) == []  # experiments/ (Hydra's files, logs) and mlruns/ (artifacts)
    assert rows_with_password(database) == []


@pytest.mark.slow
def test_credentials_in_an_http_tracking_url_are_kept_out_of_it(tmp_path):
    from test_tracking_server import start_server, stop_server

    server, url = start_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts", tmp_path / "server.log")
    try:
        with_credentials = url.replace("http://", f"http://ann:{PASSWORD}@")
        env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
        trained = lstmlab("train", *TINY, f"tracking.uri={with_credentials}", cwd=tmp_path, env=env)
        assert f"Look: open {url}/#/experiments/" in trained.stdout  # the server, without its credentials

        import mlflow

        client = mlflow.MlflowClient(url)
        (run,) = client.search_runs([client.get_experiment_by_name("lstmlab").experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.params["tracking.uri"] == url.replace("http://", "http://ann:***@")
        assert files_with_password(tmp_path) == []  # the server's database and artifacts included
    finally:
        stop_server(server)


def unused_port() -> int:
    from test_tracking_server import free_port

    return free_port()


@pytest.mark.parametrize("uri, says", [
    (f"postgresql://ann:{PASSWORD}@127.0.0.1:{{port}}/mlflow", "Connection refused"),
    (f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/no_such_database_here", 'database "no_such_database_here" does not exist'),
    (f"postgresql://ann:{PASSWORD}@127.0.0.1:port/mlflow", "invalid literal for int()"),
    (f"mysql://ann:{PASSWORD}@127.0.0.1/mlflow", "No module named 'MySQLdb' (install the database driver"),
    (f"htp://ann:{PASSWORD}@host", "unsupported URI"),
    ("./mlruns", "The filesystem tracking backend"),
], ids=["refused", "no-database", "bad-port", "no-driver", "bad-scheme", "file-store"])  # ids without the
# random password: pytest-xdist's workers must collect the same test names
def test_a_tracking_url_that_cannot_be_used_is_one_line_without_its_password(uri, says, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.replace("{port}", str(unused_port())))
    capsys.readouterr()
    assert cli_main(["rerun", "0" * 32]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab rerun: error: cannot use the MLflow store ") and err.count("\n") == 1, err
    assert says in err and PASSWORD not in err
