"""The sweep loop (claim → submit → wait → tell) driven by a fake job pool: no training, no
subprocess. A real Optuna storage (SQLite in the test's folder), the loop's own lock, heartbeats
and counting; jobs end when the fake pool's clock says so, with the value the test chose."""

from __future__ import annotations

import logging
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.lstmlab_optuna_sweeper import _loop
from hydra_plugins.lstmlab_optuna_sweeper._jobs import failed_job, run_jobs
from hydra_plugins.lstmlab_optuna_sweeper._loop import OpenStudy, StudyLoop, Tally
from hydra_plugins.lstmlab_optuna_sweeper._sampling import sampler_factory
from hydra_plugins.lstmlab_optuna_sweeper._settings import ConfirmSettings, SweepSettings
from hydra_plugins.lstmlab_optuna_sweeper._space import parse_space
from hydra_plugins.lstmlab_optuna_sweeper._storage import StudyLock, open_storage, open_study
from lstmlab import interrupts
from lstmlab.errors import LstmlabError

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

Outcome = Callable[[float], "float | BaseException"]  # a trial's x → its val_rmse, or its error


def succeed(x: float) -> float:
    return x


class FakeJob:
    def __init__(self, overrides: list[str], idx: int, ends_at: int) -> None:
        self.overrides, self.idx, self.ends_at = overrides, idx, ends_at
        self.returned: JobReturn | None = None

    def done(self) -> bool:
        return self.returned is not None

    def result(self) -> JobReturn:
        assert self.returned is not None
        return self.returned


class FakePool:
    """Jobs that take `duration(idx)` ticks of a clock that moves only in `wait`: to the next
    job's end, which ends every job due then. `on_tick(pool)` runs at each move (a signal, say)."""

    def __init__(self, outcome: Outcome = succeed, duration: Callable[[int], int] = lambda idx: 1,
                 on_tick: Callable[[FakePool], None] | None = None) -> None:
        self.outcome, self.duration, self.on_tick = outcome, duration, on_tick
        self.clock = 0
        self.jobs: list[FakeJob] = []
        self.started: dict[int, int] = {}  # job idx → the tick it was submitted at

    def submit(self, overrides: Sequence[str], idx: int) -> FakeJob:
        job = FakeJob(list(overrides), idx, self.clock + self.duration(idx))
        self.jobs.append(job)
        self.started[idx] = self.clock
        return job

    def wait(self, jobs: Sequence[FakeJob], timeout: float) -> list[FakeJob]:
        self.clock = min(job.ends_at for job in jobs if not job.done())
        if self.on_tick is not None:
            self.on_tick(self)
        for job in jobs:
            if not job.done() and job.ends_at <= self.clock:
                job.returned = self._end(job)
        return [job for job in jobs if job.done()]

    def _end(self, job: FakeJob) -> JobReturn:
        if interrupts.requested():
            return failed_job(job.overrides, KeyboardInterrupt())  # as the launchers' jobs end then
        x = float(next(o for o in job.overrides if o.startswith("x=")).split("=")[1])
        value = self.outcome(x)
        if isinstance(value, BaseException):
            return failed_job(job.overrides, value)
        return JobReturn(overrides=job.overrides, status=JobStatus.COMPLETED, _return_value=value)


class PoolLauncher:
    """A launcher that starts jobs one by one, as hydra/launcher=parallel does (`job_pool()`)."""

    def __init__(self, pool: FakePool) -> None:
        self.pool = pool

    @contextmanager
    def job_pool(self) -> Iterator[FakePool]:
        yield self.pool


class BatchLauncher:
    """A launcher with Hydra's `launch` only (basic, joblib): the loop runs it as a BatchPool."""

    def __init__(self, outcome: Outcome = succeed) -> None:
        self.engine = FakePool(outcome)
        self.batches: list[list[int]] = []

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        jobs = [self.engine.submit(o, initial_job_idx + i) for i, o in enumerate(job_overrides)]
        self.batches.append([job.idx for job in jobs])
        return [job.result() for job in self.engine.wait(jobs, 0)]


class FakeParent:
    """The study's MLflow parent run, as the loop ends it."""

    run_id = "parent-run"

    def __init__(self) -> None:
        self.ended: list[str] = []

    def summarize(self, study, space, record) -> None:
        return None

    def end(self, status: str) -> None:
        self.ended.append(status)

    def run_seconds(self, numbers: list[int]) -> float:
        return 0.0


@pytest.fixture(scope="module")
def empty_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Optuna SQLite file with its tables made, copied by each test (making them takes ~1 s)."""
    path = tmp_path_factory.mktemp("storage") / "optuna.db"
    optuna.storages.RDBStorage(f"sqlite:///{path}").engine.dispose()
    return path


@pytest.fixture
def sweep(tmp_path: Path, empty_storage: Path, caplog: pytest.LogCaptureFixture):
    """sweep(launcher, n_trials=..., ...) runs a StudyLoop on the test's study; its parent stand-in.
    `sweep.trials()`: the study's trials now."""
    caplog.set_level(logging.INFO, logger=_loop.__name__)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shutil.copy(empty_storage, tmp_path / "optuna.db")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url, heartbeat_interval=1, retry_s=0)
    # No waiting for the disk: what the test reads back was written by its own process.
    sqlalchemy.event.listen(storage.engine, "connect",
                            lambda connection, _: connection.execute("PRAGMA synchronous=OFF"))
    storage.engine.dispose()
    space = parse_space({}, ["x=interval(0,1)"])

    def run(launcher, n_trials: int = 4, concurrency: int = 2, async_trials: bool = True,
            max_failure_rate: float = 1.0) -> FakeParent:
        settings = SweepSettings(
            study_name="loop", n_trials=n_trials, concurrency=concurrency, async_trials=async_trials,
            storage_url=url, space=space, sampler=sampler_factory("random", 7, space),
            pruner={"name": "none"}, max_failure_rate=max_failure_rate, heartbeat_interval=1,
            storage_retry_s=0, data_fingerprint="fake", confirm=ConfirmSettings(0, (), ()))
        study = open_study(storage, "loop", settings.sampler.per_trial())
        parent = FakeParent()
        opened = OpenStudy(study=study, storage=storage, lock=StudyLock(url, "loop", 0), parent=parent)
        StudyLoop(settings, opened, launcher, lambda overrides: OmegaConf.create({})).run()
        return parent

    run.url = url
    run.trials = lambda: optuna.load_study(study_name="loop", storage=storage).get_trials(deepcopy=False)
    run.states = lambda: [t.state.name for t in run.trials()]
    return run


def test_async_the_next_trial_starts_as_soon_as_one_ends(sweep) -> None:
    pool = FakePool(duration=lambda idx: 3 if idx == 0 else 1)  # job 0 is slow
    parent = sweep(PoolLauncher(pool), n_trials=4, concurrency=2)
    # job 1 ends at tick 1 and job 2 starts then, while job 0 still runs; job 3 at tick 2
    assert pool.started == {0: 0, 1: 0, 2: 1, 3: 2}
    assert sweep.states() == ["COMPLETE"] * 4 and parent.ended == ["FINISHED"]


def test_batches_wait_for_their_slowest_job(sweep, caplog) -> None:
    launcher = BatchLauncher()
    sweep(launcher, n_trials=5, concurrency=2)
    assert launcher.batches == [[0, 1], [2, 3], [4]]
    assert sweep.states() == ["COMPLETE"] * 5
    assert "trials run in batches of 2, each awaited whole: the launcher BatchLauncher" in caplog.text


def test_async_trials_false_runs_batches_even_where_the_launcher_has_a_pool(sweep, caplog) -> None:
    class Both(BatchLauncher, PoolLauncher):
        pass

    launcher = Both()
    launcher.pool = FakePool()
    sweep(launcher, n_trials=3, concurrency=2, async_trials=False)
    assert launcher.batches == [[0, 1], [2]] and not launcher.pool.jobs
    assert "each awaited whole: hydra.sweeper.async_trials=false" in caplog.text


def test_too_many_failures_stop_the_sweep_once_the_running_trials_end(sweep) -> None:
    pool = FakePool(outcome=lambda x: RuntimeError("diverged"))
    with pytest.raises(LstmlabError, match=r"2 of 4 trials failed, more than hydra.sweeper.max_failure_rate=0.25"):
        sweep(PoolLauncher(pool), n_trials=4, concurrency=2, max_failure_rate=0.25)
    assert len(pool.jobs) == 2  # both started ones were told; none started after
    assert sweep.states() == ["FAIL", "FAIL"]
    assert sweep.trials()[0].user_attrs["error"] == "RuntimeError: diverged"


def test_ctrl_c_gives_the_running_trials_back_and_a_rerun_resumes(sweep, monkeypatch, caplog) -> None:
    def signal_at_tick_2(pool: FakePool) -> None:
        if pool.clock == 2:
            monkeypatch.setattr(interrupts, "_received", signal.SIGINT)

    pool = FakePool(duration=lambda idx: 2 if idx < 2 else 1, on_tick=signal_at_tick_2)
    with pytest.raises(KeyboardInterrupt):
        sweep(PoolLauncher(pool), n_trials=4, concurrency=2)
    assert len(pool.jobs) == 2 and sweep.states() == ["FAIL", "FAIL", "WAITING", "WAITING"]
    assert "interrupted: trial 0 is queued again" in caplog.text
    given_back = {t.number: t.params for t in sweep.trials()}

    monkeypatch.setattr(interrupts, "_received", None)
    parent = sweep(PoolLauncher(FakePool()), n_trials=4, concurrency=2)
    done = sweep.trials()
    assert [t.state.name for t in done] == ["FAIL", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert done[2].params == given_back[0] and done[3].params == given_back[1]  # the same trials again
    assert "trial 2 (rerun of 0) COMPLETE" in caplog.text and parent.ended == ["FINISHED"]
    assert Tally.of(done).finished == 4


def test_a_resume_with_more_trials_continues_to_n_trials(sweep) -> None:
    sweep(PoolLauncher(FakePool()), n_trials=3, concurrency=2)
    sweep(PoolLauncher(FakePool()), n_trials=5, concurrency=2)
    sweep(PoolLauncher(pool := FakePool()), n_trials=5, concurrency=2)
    assert sweep.states() == ["COMPLETE"] * 5 and not pool.jobs  # the third had nothing left to run


def test_a_stale_trial_is_failed_and_run_again(sweep, caplog) -> None:
    study = optuna.create_study(study_name="loop", storage=sweep.url, direction="minimize")
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})  # a worker that died at once
    engine = sqlalchemy.create_engine(sweep.url)
    with engine.begin() as connection:  # started long before the grace period
        connection.execute(sqlalchemy.text("UPDATE trials SET datetime_start = :t WHERE number = 0"),
                           {"t": datetime.now() - timedelta(hours=1)})
    engine.dispose()
    sweep(PoolLauncher(FakePool()), n_trials=3, concurrency=2)
    done = sweep.trials()
    assert [t.state.name for t in done] == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert done[1].params == dead.params and "trial 1 (rerun of 0) COMPLETE" in caplog.text


def test_run_jobs_keeps_the_pool_busy_and_returns_results_in_order() -> None:
    pool = FakePool(duration=lambda idx: 3 if idx == 10 else 1)
    results = run_jobs(pool, [[f"x={x}"] for x in (0.1, 0.2, 0.3, 0.4)], concurrency=2, first_idx=10)
    assert [r.return_value for r in results] == [0.1, 0.2, 0.3, 0.4]
    assert pool.started == {10: 0, 11: 0, 12: 1, 13: 2}
