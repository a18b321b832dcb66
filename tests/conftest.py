"""Shared test fixtures: a real MLflow store in a temp folder, configs composed by Hydra."""

from __future__ import annotations

import os
import re
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as lstmlab sets it (lstmlab.console)

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from lstmlab.commands.hydra_compat import VERSION_BASE  # noqa: E402
from lstmlab.paths import config_dir  # noqa: E402

# What must never reach a user's console by default: TensorFlow's C++ log (I0000 00:00:...),
# absl, CUDA, MLflow's log lines, Python warnings.
FRAMEWORK_NOISE = re.compile(r"^[IWEF]\d{4} |absl|cuda|cuInit|oneDNN|NodeDef|cpu_feature_guard|tensorflow"
                             r"|\bINFO\b|\bWARNING\b|Warning", re.IGNORECASE | re.MULTILINE)

# The `lstmlab` command as the tests start it: this interpreter, whatever PATH holds.
LSTMLAB = [sys.executable, "-m", "lstmlab.cli"]

# Small enough to train in seconds on 2 cores, large enough to have every part of the split.
TINY = [
    "data=synthetic",
    "data.rows=240",
    "data.lookback=8",
    "trainer.epochs=2",
    "trainer.verbose=0",
    "tracking.log_model=false",
]


@pytest.fixture(autouse=True)
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test works in its own folder with its own MLflow store (sqlite + mlruns/ there)."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)  # MLflow keeps the last URI set in-process; start each test clean
    return tmp_path


def make_config(*overrides: str) -> DictConfig:
    """The composed `train` config, as `lstmlab train OVERRIDES` would see it."""
    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
        return compose(config_name="train", overrides=list(overrides))


def tiny_config(*overrides: str) -> DictConfig:
    return make_config(*TINY, *overrides)


def csv_config(path: str, *overrides: str) -> DictConfig:
    """TINY on a CSV file instead of the generated series."""
    settings = [o for o in TINY if not o.startswith(("data=", "data.rows="))]
    return make_config("data=csv", f"data.path={path}", *settings, *overrides)


@contextmanager
def own_store(folder: Path) -> Iterator[str]:
    """Work in `folder` with a store of its own there, as its URI: for module-scoped fixtures that
    train once and serve several tests (the autouse store above is per test)."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


def train_in_own_store(folder: Path, *overrides: str, cfg: DictConfig | None = None) -> dict:
    """One tiny run (or `cfg`) in a store of its own under `folder`."""
    from lstmlab.pipeline.experiment import run_experiment

    cfg = cfg if cfg is not None else tiny_config(*overrides)
    with own_store(folder) as uri:
        result = run_experiment(cfg)
    return {"uri": uri, "run_id": result.run_id, "config": cfg}


def train_groups_in_own_store(folder: Path, groups: dict[str, tuple[list[str], tuple[int, ...]]]) -> dict:
    """Tiny runs of several groups in a store of their own under `folder`: for each name, its
    overrides trained once per seed. Returns the store's URI and the run ids by group."""
    from lstmlab.pipeline.experiment import run_experiment

    ids: dict[str, list[str]] = {name: [] for name in groups}
    with own_store(folder) as uri:
        for name, (overrides, seeds) in groups.items():
            for seed in seeds:
                ids[name].append(run_experiment(tiny_config(*overrides, f"trainer.seed={seed}")).run_id)
    return {"uri": uri, "ids": ids}


def use_store(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this test (environment and MLflow's in-process setting) at the store `uri`."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)


POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@contextmanager
def postgres_databases(*prefixes: str) -> Iterator[list[str]]:
    """Throwaway databases on the real server (127.0.0.1:5432, user postgres), one per prefix,
    as `postgresql://` URLs; dropped afterwards. Skips when no server answers, unless $CI is set."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(dbname="postgres", connect_timeout=5, **POSTGRES)
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server on 127.0.0.1:5432 ({str(error).strip()})")
    admin.autocommit = True
    names = [f"{prefix}_{uuid.uuid4().hex[:12]}" for prefix in prefixes]
    try:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f"CREATE DATABASE {name}")
        yield [f"postgresql://postgres@127.0.0.1:5432/{name}" for name in names]
    finally:
        with admin.cursor() as cursor:
            for name in names:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
