"""TrialLink: what the sweeper tells a job about its Optuna trial, the config's `trial` node;
ConfirmLink: what its confirm stage tells one of its runs, the `confirm` node.

One class writes it (the `trial=...` override the sweeper adds to each job) and reads it (the job's
composed config), so the two ends cannot drift apart.

The link never carries a password: Hydra prints a job's overrides and writes them into its
`.hydra/` files. A storage URL with one travels in the link masked (`user:***@host`), and the
sweeper hands the full URL to its jobs through the environment (STORAGE_ENV), which in-process
jobs, loky workers, submitit's processes and SLURM jobs (sbatch exports it) inherit; a job takes
it when its masked form is the link's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.names import CONFIRM_BASELINE_TAG, CONFIRM_TRIAL_TAG
from lstmlab.secrets import MASK, mask
from lstmlab.sweep.optuna_specs import pruner_spec
from lstmlab.sweep.override_text import format_value

KEY = "trial"  # the config node (conf/train.yaml: `trial: null` outside sweeps)
STORAGE_ENV = "LSTMLAB_OPTUNA_STORAGE"  # the storage URL, password included, for the jobs


def hand_over_storage(url: str) -> str:
    """Put `url` where the jobs find it (this process's environment, which they inherit); the
    form links, messages and files show: `url` with its password masked."""
    shown = mask(url)
    if shown != url:
        os.environ[STORAGE_ENV] = url
    return shown


@dataclass(frozen=True)
class TrialLink:
    """The `trial` node the sweeper sets on each job: study, storage (password masked), number,
    parent run, pruner, and how long the job rides out a storage that stops answering."""

    study: str
    storage: str
    number: int
    parent_run_id: str | None = None
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    storage_retry_s: float = 60

    def override(self) -> str:
        """The job's `trial={...}` override."""
        return f"{KEY}={format_value(asdict(self))}"

    @classmethod
    def from_config(cls, node: DictConfig) -> TrialLink:
        values = OmegaConf.to_container(node, resolve=True)
        if not isinstance(values, dict):
            raise LstmlabError(f"trial={values}: not set by the Optuna sweeper; "
                               "run sweeps with `lstmlab train -m hparams_search=...`")
        try:
            return cls(
                study=str(values["study"]),
                storage=str(values["storage"]),
                number=int(values["number"]),
                parent_run_id=values.get("parent_run_id"),
                pruner=pruner_spec(values.get("pruner")),
                storage_retry_s=float(values.get("storage_retry_s", 60)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LstmlabError(f"trial={values}: not set by the Optuna sweeper ({error}); "
                               "run sweeps with `lstmlab train -m hparams_search=...`") from None

    def storage_url(self) -> str:
        """The storage URL to open: the link's, or with a masked password the sweeper's from the
        environment."""
        if f":{MASK}@" not in self.storage:
            return self.storage
        given = os.environ.get(STORAGE_ENV)
        if given is not None and mask(given) == self.storage:
            return given
        raise LstmlabError(f"trial {self.number}: the Optuna storage {self.storage} needs its password, "
                           f"which the sweeper hands its jobs in ${STORAGE_ENV}; this job's environment "
                           "lacks it (keep it exported to the jobs, or give the password through "
                           "~/.pgpass or PGPASSWORD and none in the URL)")

    @property
    def run_name(self) -> str:
        return f"trial-{self.number}"


CONFIRM_KEY = "confirm"  # the config node (conf/train.yaml: `confirm: null` outside a confirm stage)


@dataclass(frozen=True)
class ConfirmLink:
    """The `confirm` node of one confirm job: the parent run, the trial it retrains (None: the
    baseline) and its seed (also in trainer.seed; here for the folder's and the run's name)."""

    parent_run_id: str
    trial: int | None
    seed: int

    @property
    def name(self) -> str:
        """The run's name and the job's folder: confirm-trial-17-seed-3, confirm-baseline-seed-3."""
        what = "baseline" if self.trial is None else f"trial-{self.trial}"
        return f"confirm-{what}-seed-{self.seed}"

    @property
    def tags(self) -> dict[str, str]:
        if self.trial is None:
            return {CONFIRM_BASELINE_TAG: "true"}
        return {CONFIRM_TRIAL_TAG: str(self.trial)}

    def override(self) -> str:
        """The job's `confirm={...}` override; `folder` names its output folder (hydra.sweep.subdir)."""
        return f"{CONFIRM_KEY}={format_value({**asdict(self), 'folder': self.name})}"

    @classmethod
    def from_config(cls, node: DictConfig) -> ConfirmLink:
        values = OmegaConf.to_container(node, resolve=True)
        try:
            assert isinstance(values, dict)
            trial = values.get("trial")
            return cls(parent_run_id=str(values["parent_run_id"]),
                       trial=None if trial is None else int(trial), seed=int(values["seed"]))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise LstmlabError(f"confirm={values}: not set by a sweep's confirm stage; run it with "
                               "`lstmlab train -m hparams_search=... hydra.sweeper.confirm.top_k=K`") from None
