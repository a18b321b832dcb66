"""The RDB storage every sweep opens, with what it needs of Optuna's internals: a RUNNING trial that
never beat can be stale too (HeartbeatStorage), the private methods Optuna's own wrapper calls
(which lstmlab.sweep.outages retries), and a misleading warning of Optuna's dropped.
tests/sweep/test_compat.py fails here when an upgrade moves one of them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import optuna
import sqlalchemy
from optuna.trial import TrialState

from lstmlab.sweep.optuna_ids import frozen_trial_id

# The private RDBStorage methods that Optuna's _CachedStorage (which wraps the RDB storage of every
# Study: optuna.storages.get_storage) calls, besides public ones: lstmlab.sweep.outages retries
# them as it retries the public ones. tests/sweep/test_compat.py reads _CachedStorage for the list.
CACHED_STORAGE_PRIVATE_CALLS = ("_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids",
                                "_get_trials", "_set_trial_param")


# RDBStorage._get_trials takes any OperationalError of its one-query read for "too many variables"
# and falls back to a slower read, with a warning that quotes the error: during a database restart
# it says "Caught an error from sqlalchemy: ... server closed the connection" before the fallback
# fails too and lstmlab.sweep.outages says the outage in its own words. Dropped here (it is not
# actionable either way); tests/sweep/test_compat.py checks the logger and the words are still Optuna's.
RDB_STORAGE_LOGGER = "optuna.storages._rdb.storage"
FALLBACK_WARNING = "Caught an error from sqlalchemy"


def quiet_read_fallback() -> None:
    """Drop Optuna's "falling back to a slower alternative" warning (see above); once per process."""
    logger = logging.getLogger(RDB_STORAGE_LOGGER)
    if not any(isinstance(f, _FallbackFilter) for f in logger.filters):
        logger.addFilter(_FallbackFilter())


class _FallbackFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(FALLBACK_WARNING)


class HeartbeatStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, where a RUNNING trial with no heartbeat at all can be stale too.

    Optuna's own rule skips such a trial, so it stays RUNNING for good and every resume waits for
    it. `_get_stale_trial_ids` is the storage method `optuna.storages.fail_stale_trials` asks
    (private in Optuna; tests/sweep/test_compat.py checks it is still asked); the trials it adds are
    failed and queued again like any stale trial.
    """

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        return stale + [i for i in self._never_beaten(study_id) if i not in stale]

    def _never_beaten(self, study_id: int) -> list[int]:
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return []
        query = sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids")
        query = query.bindparams(sqlalchemy.bindparam("ids", expanding=True))
        with self.engine.connect() as connection:
            ids = {"ids": [frozen_trial_id(t) for t in running]}
            beating = {row[0] for row in connection.execute(query, ids)}
        # Optuna records datetime_start in the worker's local time, as datetime.now().
        assert self.grace_period is not None  # _storage.open_storage always sets it
        started_before = datetime.now() - timedelta(seconds=self.grace_period)
        return [frozen_trial_id(t) for t in running if frozen_trial_id(t) not in beating
                and t.datetime_start is not None and t.datetime_start < started_before]
