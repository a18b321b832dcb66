"""An experiment's runs as one table, read straight from a database store's tables.

`mlflow.search_runs` builds an ORM object for every param, tag and metric of every run before it
makes its DataFrame: for a study of 2,000 runs that is ~110,000 objects and most of compare's
time. A database store (SQLite, PostgreSQL, MySQL) holds the same values in four plain tables
(`runs`, `latest_metrics`, `params`, `tags`), so compare reads them with three queries and pivots
them with pandas into the very columns `search_runs` returns (`run_id`, `status`, `start_time`,
`end_time`, `artifact_uri`, `metrics.*`, `params.*`, `tags.*`; active runs only; NaN metrics as
NaN). MLflow's schema is not a public API: `tests/comparison/test_store_table.py` checks this
table equals `mlflow.search_runs` on a real store, so an MLflow upgrade that changes the schema
fails there, and any query error here falls back to `mlflow.search_runs` (as does a tracking
server, whose database compare cannot see).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

import mlflow
import pandas as pd

log = logging.getLogger(__name__)

DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def experiment_runs(experiment_id: str) -> pd.DataFrame:
    """Every active run of the experiment, as `mlflow.search_runs(experiment_ids=[...])` returns them."""
    uri = mlflow.get_tracking_uri()
    if uri.split(":", 1)[0].split("+", 1)[0] in DATABASES:
        import sqlalchemy

        try:
            return _from_tables(uri, experiment_id)
        except sqlalchemy.exc.SQLAlchemyError as error:  # another schema: MLflow's own search reads it
            log.debug("reading the runs table directly failed (%s); using mlflow.search_runs", error)
    return mlflow.search_runs(experiment_ids=[experiment_id])


def _from_tables(uri: str, experiment_id: str) -> pd.DataFrame:
    import sqlalchemy
    from sqlalchemy import text

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    ours = "SELECT run_uuid FROM runs WHERE experiment_id = :e AND lifecycle_stage = 'active'"
    try:
        with engine.connect() as connection:
            runs = connection.execute(text(
                "SELECT run_uuid, experiment_id, status, artifact_uri, start_time, end_time FROM runs "
                "WHERE experiment_id = :e AND lifecycle_stage = 'active'"), {"e": int(experiment_id)}).all()
            values: dict[str, dict[str, object]] = defaultdict(dict)
            for kind, query in (
                ("params", f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({ours})"),
                ("tags", f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({ours})"),
            ):
                for run_id, key, value in connection.execute(text(query), {"e": int(experiment_id)}):
                    values[run_id][f"{kind}.{key}"] = value
            metrics = connection.execute(text(
                f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({ours})"),
                {"e": int(experiment_id)})
            for run_id, key, value, is_nan in metrics:
                values[run_id][f"metrics.{key}"] = math.nan if is_nan else float(value)
    finally:
        engine.dispose()
    if not runs:
        return pd.DataFrame()
    table = pd.DataFrame.from_records(
        [{"run_id": run_id, "experiment_id": str(experiment), "status": status, "artifact_uri": artifact,
          "start_time": start, "end_time": end, **values.get(run_id, {})}
         for run_id, experiment, status, artifact, start, end in runs])
    for column in ("start_time", "end_time"):
        table[column] = pd.to_datetime(table[column], unit="ms", utc=True)
    # search_runs' column order: attributes, then metrics, params and tags, each sorted
    kinds = [sorted(c for c in table.columns if c.startswith(f"{kind}.")) for kind in ("metrics", "params", "tags")]
    ordered = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time", *sum(kinds, [])]
    return table[ordered].sort_values(["start_time", "run_id"], ascending=[False, True]).reset_index(drop=True)
