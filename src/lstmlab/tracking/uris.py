"""Store URLs: the MLflow tracking URI made usable before MLflow sees it, and the database driver
rule that the tracking URI and the sweeper's Optuna storage share.

SQLAlchemy 2 reads `postgresql://` as psycopg (3); lstmlab installs psycopg2, so a plain
`postgresql://` URL names psycopg2 when psycopg is absent (`with_installed_driver`; the sweeper's
`_storage.resolve_url` applies the same rule to hydra.sweeper.storage).

A tracking URI MLflow cannot use fails deep inside MLflow with a long traceback that echoes the
URL, password included: an unknown scheme, a port that is no number, a missing driver, or a
database that does not answer (MLflow retries that for about two minutes first). `use_tracking_uri`
tries the URI once, with one connection of a short timeout, and says what is wrong in one line
with the password masked. An http(s) URI's `user:password@` moves to MLFLOW_TRACKING_USERNAME and
MLFLOW_TRACKING_PASSWORD (how MLflow takes basic-auth credentials), so the URI MLflow holds, and
every line that shows it, carries none.
"""

from __future__ import annotations

import importlib.util
import os
from urllib.parse import unquote, urlsplit, urlunsplit

from lstmlab.errors import LstmlabError, first_line
from lstmlab.secrets import mask

# Seconds to wait for a database server's first answer; LSTMLAB_SERVER_TIMEOUT overrides it, as
# for a tracking server (lstmlab.tracking.reach).
DEFAULT_TIMEOUT = 5
# Database backends with a `connect_timeout` connection argument (psycopg2, pymysql, mysqlclient).
_CONNECT_TIMEOUT = ("postgresql", "mysql", "mariadb")
_DATABASE_SERVERS = ("postgresql", "mysql", "mariadb", "mssql")  # MLflow's SQL stores but SQLite

_checked: set[str] = set()  # tracking URIs this process has tried


def with_installed_driver(url: str) -> str:
    """`url` with `postgresql://` changed to `postgresql+psycopg2://` when psycopg (3), which
    SQLAlchemy 2 means by the plain scheme, is not installed; any other URL as it is."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return f"postgresql+psycopg2://{rest}"
    return url


def use_tracking_uri(uri: str | None) -> str:
    """Point MLflow at `uri` (None: $MLFLOW_TRACKING_URI, else MLflow's default store), usable as
    described above; the URI MLflow now holds. Set explicitly because MLflow keeps the last URI set
    in a process, and None must not inherit it."""
    import mlflow

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    # None: MLflow's default store (set_tracking_uri handles it; its hint says str only)
    mlflow.set_tracking_uri(None if uri is None else usable(uri))  # type: ignore[arg-type]
    current = mlflow.get_tracking_uri()
    if current not in _checked:
        _try(current)
        _checked.add(current)
    return current


def usable(uri: str) -> str:
    """The tracking URI with the installed driver named and an http(s) URI's `user:password@`
    moved to MLflow's credential variables (for a check of the server before MLflow is used)."""
    return _credentials_to_environment(with_installed_driver(uri))


def _credentials_to_environment(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(user)
    if password:
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return urlunsplit(parts._replace(netloc=host))


def _try(uri: str) -> None:
    """One line when MLflow cannot use `uri`. A SQLite store is left to tracking.schema (it is
    created under a lock) and a tracking server to tracking.reach (its own timeout)."""
    from mlflow import MlflowClient

    if uri.startswith(("sqlite:", "http://", "https://")):
        return
    try:
        _connect_once(uri)
        MlflowClient(uri)  # the store MLflow keeps for this URI: made once, used from here on
    except LstmlabError:
        raise
    except Exception as error:  # noqa: BLE001 - schemes, drivers and servers fail in their own ways
        raise LstmlabError(unusable(uri, error)) from None


def _connect_once(uri: str) -> None:
    """One connection to a database store with a short timeout (MLflow's own retries for minutes)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):  # not a database URL (or its port no number): MLflow says what it is
        return
    if url.get_backend_name() not in _DATABASE_SERVERS:
        return
    timeout = int(float(os.environ.get("LSTMLAB_SERVER_TIMEOUT") or DEFAULT_TIMEOUT))
    arguments = {"connect_timeout": timeout} if url.get_backend_name() in _CONNECT_TIMEOUT else {}
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, connect_args=arguments)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def unusable(uri: str, error: BaseException) -> str:
    reason = first_line(error)
    if isinstance(error, ModuleNotFoundError):
        reason += " (install the database driver the URL names, e.g. postgresql+psycopg2://)"
    return mask(
        f"cannot use the MLflow store {uri}: {reason}; check tracking.uri or MLFLOW_TRACKING_URI "
        "(is the server running, does the database exist, is the password right? keep it out of "
        "the URL: ~/.pgpass, PGPASSWORD)"
    )
