"""Like with like: a comparison keeps the runs on the baseline's data and evaluation setup.

Runs on other data (another `data_sha256`) or evaluated otherwise (other `evaluation.*` params)
forecast other days, or the same days another way: no paired test can compare them with the
baseline. Runs evaluated otherwise are always left out; runs on other data unless `--all` (their
groups get no verdict). The notes say how many, on what, and how to compare them (`--data`,
`--filter`, `--baseline`, `--all`).
"""

from __future__ import annotations

import pandas as pd

from lstmlab import names
from lstmlab.errors import LstmlabError
from lstmlab.names import DATA_TAG, dataset_name
from lstmlab.plural import count

DATA_COLUMN = f"tags.{DATA_TAG}"  # search_runs' column of the data fingerprint
EVALUATION_PREFIX = "params.evaluation."
PARAM_DEFAULTS = {f"params.{key}": value for key, value in names.PARAM_DEFAULTS.items()}


def with_defaults(runs: pd.DataFrame) -> pd.DataFrame:
    """Params a run predates filled in with the default it ran with, so old and new runs group alike."""
    runs = runs.copy()
    for column, default in PARAM_DEFAULTS.items():
        runs[column] = runs[column].fillna(default) if column in runs else default
    return runs


def evaluation_keys(runs: pd.DataFrame) -> pd.Series:
    """'holdout', or e.g. 'walk_forward (folds=5, window=expanding)': the evaluation.* params in words."""
    columns = sorted(c for c in runs.columns if c.startswith(EVALUATION_PREFIX) and c != "params.evaluation.name")

    def words(row: pd.Series) -> str:
        details = [f"{c[len(EVALUATION_PREFIX):]}={row[c]}" for c in columns
                   if pd.notna(row[c]) and row[c] not in ("None", "null") and not c.endswith("._target_")]
        return f"{row['params.evaluation.name']} ({', '.join(details)})" if details else str(row["params.evaluation.name"])

    return runs.apply(words, axis=1) if len(runs) else pd.Series(dtype=str)


NO_FINGERPRINT = f"(no {DATA_TAG})"


def data_names(runs: pd.DataFrame) -> pd.Series:
    """Each run's data in words: its dataset name as the MLflow UI shows it (lstmlab.names.dataset_name:
    sp500, synthetic, csv-<file stem>) and the start of its fingerprint, e.g. 'csv-prices 3f2a1b0c'."""
    source = runs["params.data.source"] if "params.data.source" in runs else pd.Series("data", index=runs.index)
    path = runs["params.data.path"] if "params.data.path" in runs else pd.Series(None, index=runs.index, dtype=object)
    sha = runs[DATA_COLUMN] if DATA_COLUMN in runs else pd.Series(None, index=runs.index, dtype=object)
    names = [f"{dataset_name(src, file if isinstance(file, str) else None)} "
             f"{fingerprint[:8] if isinstance(fingerprint, str) else NO_FINGERPRINT}"
             for src, file, fingerprint in zip(source.fillna("data"), path, sha)]
    return pd.Series(names, index=runs.index, dtype=str)


def bare_names(names: pd.Series) -> pd.Series:
    """`data_names` without the fingerprint part: the dataset names alone."""
    return names.str.removesuffix(f" {NO_FINGERPRINT}").where(names.str.endswith(NO_FINGERPRINT),
                                                             names.str.rsplit(" ", n=1).str[0])


def on_data(runs: pd.DataFrame, data: str) -> pd.Series:
    """Runs on `--data`: a prefix of the data_sha256 tag, or the dataset's name as the MLflow UI
    shows it (sp500, synthetic, csv-prices; `runs`' column data_name holds them, see data_names);
    failing that, a CSV's file name or path (prices.csv, prices)."""
    sha = runs[DATA_COLUMN].fillna("") if DATA_COLUMN in runs else pd.Series("", index=runs.index)
    by_sha = sha.str.startswith(data.lower()) if len(data) >= 4 else pd.Series(False, index=runs.index)
    names = bare_names(runs["data_name"]).str.lower()
    match = by_sha | names.eq(data.lower())
    if not match.any():
        match = names.eq(dataset_name("csv", data).lower())
    if not match.any():
        known = ", ".join(sorted(set(runs["data_name"]))) or "none"
        raise LstmlabError(f"--data {data!r} matches no run's data (name or data_sha256 prefix); data here: {known}")
    return match


def left_out_notes(runs: pd.DataFrame, data_kept: pd.Series, evaluation_kept: pd.Series, data_note: bool) -> list[str]:
    """What the scope left out, counted by data (runs not `data_kept`) and by evaluation (the rest
    not `evaluation_kept`), and how to include it."""
    notes = []
    other_data = runs[~data_kept]
    if len(other_data):
        counts = other_data["data_name"].value_counts()
        listed = "; ".join(f"{name}: {n}" for name, n in counts.items())
        notes.append(
            f"Left out {count(len(other_data), 'run')} on other data ({listed}). Compare them with --data NAME|SHA_PREFIX "
            "(their own baseline), or all together with --all (no paired test across data)."
            if data_note else f"Left out {count(len(other_data), 'run')} on other data ({listed})."
        )
    otherwise = runs[data_kept & ~evaluation_kept]
    if len(otherwise):
        counts = otherwise["evaluation"].value_counts()
        listed = "; ".join(f"{name}: {n}" for name, n in counts.items())
        first = counts.index[0].split(" ", 1)[0]
        notes.append(
            f"Left out {count(len(otherwise), 'run')} evaluated otherwise ({listed}). Compare them with "
            f"--filter \"params.evaluation.name = '{first}'\" (the baseline is then taken among them) "
            "or --baseline RUN_ID on that evaluation."
        )
    return notes

