"""Claim: with `tracking.skip_finished`, a configuration that two commands start at once is
trained by one of them; the other waits for its run and reuses it.

Two identical `lstmlab train -m ... tracking.skip_finished=true` started together each found no
FINISHED run and each trained every configuration. The FINISHED look-up (pipeline.reuse) cannot
see a run still training, so a job also claims its configuration in the store, among the RUNNING
runs of the same identity (tag `lstmlab.config_sha256`: the configuring params, the seed and
the data fingerprint reuse goes by), with Lamport's bakery algorithm, which needs only what
every MLflow store does atomically (create a run with its tags, set a tag, search):

1. the job's run is created with the identity and an empty ticket (tag `lstmlab.ticket`: choosing);
2. it reads its twins' tickets and takes one more than the highest;
3. it waits while a twin is still choosing, then yields if a live twin holds a smaller
   (ticket, run id): its run is closed and deleted, and it waits for that twin's run to end.

Two jobs that both passed step 3 would each have seen the other's ticket before taking its own,
which cannot be; so each configuration is trained once, on SQLite, PostgreSQL or a tracking
server alike. A twin whose process is gone (this host: tags lstmlab.host/pid, see
tracking.orphans) is closed as KILLED and does not count; a twin of another host counts while it
is RUNNING, as nothing here can see whether its process lives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from lstmlab import interrupts
from lstmlab.pipeline.params import configuring, run_params
from lstmlab.tracking.orphans import HOST, PID, START, close_run, is_gone

log = logging.getLogger(__name__)

KEY_TAG = "lstmlab.config_sha256"
TICKET_TAG = "lstmlab.ticket"
POLL_S = 0.2  # while a twin chooses its ticket (a search and a tag: milliseconds)
CHOOSING_S = 30.0  # a twin choosing longer has stalled (its process stopped between its two writes)
WAIT_POLL_S = 1.0  # while the twin that holds the configuration trains


def config_key(cfg: DictConfig, data_sha256: str) -> str:
    """What identifies a configuration for reuse: its configuring params, its seed, its data."""
    identity = {"params": configuring(run_params(cfg)), "seed": str(cfg.trainer.seed), "data": data_sha256}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class Yielded(Exception):
    """This job's configuration is held by the run `holder`: a twin that claimed it first, or a
    FINISHED run that appeared meanwhile."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"run {holder} holds this configuration")
        self.holder = holder


@dataclass
class Claim:
    """The claim of one job on its configuration (`key`) in one experiment; `finished` looks the
    configuration's FINISHED run up (pipeline.reuse), once more after the claim is won: a twin
    may have finished between the job's first look-up and its claim."""

    experiment_id: str
    key: str
    finished: Callable[[], str | None]

    @property
    def tags(self) -> dict[str, str]:
        """The tags its run is created with: the identity, no ticket yet."""
        return {KEY_TAG: self.key, TICKET_TAG: ""}

    def hold(self, run_id: str) -> None:
        """Take a ticket for the run `run_id` (created with `tags`); raise Yielded when a live
        twin holds the configuration."""
        client = MlflowClient()
        tickets = [_ticket(twin) for twin in self._twins(client, run_id)]
        mine = 1 + max((t for t in tickets if t is not None), default=0)
        client.set_tag(run_id, TICKET_TAG, str(mine))
        started = time.monotonic()
        while True:
            twins = [twin for twin in self._twins(client, run_id) if not _stale(client, twin)]
            choosing = [twin for twin in twins if _ticket(twin) is None]
            if choosing and time.monotonic() - started < CHOOSING_S:
                interrupts.check()
                time.sleep(POLL_S)
                continue
            ahead = [twin for twin in twins if _ticket(twin) is not None and
                     (_ticket(twin), twin.info.run_id) < (mine, run_id)]
            if ahead:
                raise Yielded(min(ahead, key=lambda twin: (_ticket(twin), twin.info.run_id)).info.run_id)
            finished = self.finished()
            if finished is not None:
                raise Yielded(finished)
            return

    def wait_for(self, holder: str) -> bool:
        """Until the run `holder` ends: True when it FINISHED (its result is there to reuse),
        False when it stopped otherwise or its process had gone (then claim again)."""
        client = MlflowClient()
        said = False
        while True:
            try:
                run = client.get_run(holder)
            except MlflowException:  # gone from the store
                return False
            if run.info.status == "RUNNING" and not said:
                tags, said = run.data.tags, True
                log.info("waiting for run %s (%s), which another command (pid %s on %s) is training with this "
                         "configuration on these data (tracking.skip_finished=true); Ctrl-C stops waiting",
                         holder, run.info.run_name, tags.get(PID, "?"), tags.get(HOST, "?"))
            if run.info.lifecycle_stage == "deleted" or run.info.status in ("KILLED", "FAILED"):
                return False
            if run.info.status == "FINISHED":
                return True
            if _stale(client, run):
                return False
            interrupts.check()
            time.sleep(WAIT_POLL_S)

    def _twins(self, client: MlflowClient, run_id: str) -> list[Run]:
        runs = client.search_runs(
            [self.experiment_id], f"attributes.status = 'RUNNING' AND tags.`{KEY_TAG}` = '{self.key}'",
            max_results=1000)
        return [run for run in runs if run.info.run_id != run_id]


def _ticket(run: Run) -> int | None:
    value = run.data.tags.get(TICKET_TAG, "")
    return int(value) if value.isdigit() else None


def _stale(client: MlflowClient, run: Run) -> bool:
    """A twin of this host whose process is gone: closed as KILLED here (it would never end)."""
    tags = run.data.tags
    if tags.get(HOST) != socket.gethostname() or not tags.get(PID, "").isdigit():
        return False
    pid = int(tags[PID])
    if not is_gone(pid, tags.get(START, "")):
        return False
    close_run(client, run.info.run_id, f"process {pid} on {tags[HOST]} had gone")
    log.info("closed run %s as KILLED: it held this configuration, but its process %d had gone; training it here",
             run.info.run_id, pid)
    return True
