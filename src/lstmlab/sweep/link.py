"""TrialLink: what the sweeper tells a job about its Optuna trial, the config's `trial` node.

One class writes it (the `trial=...` override the sweeper adds to each job) and reads it (the job's
composed config), so the two ends cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.sweep.optuna_specs import pruner_spec
from lstmlab.sweep.override_text import format_value

KEY = "trial"  # the config node (conf/train.yaml: `trial: null` outside sweeps)


@dataclass(frozen=True)
class TrialLink:
    """The `trial` node the sweeper sets on each job: study, storage, number, parent run, pruner."""

    study: str
    storage: str
    number: int
    parent_run_id: str | None = None
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "none"})

    def override(self) -> str:
        """The job's `trial={...}` override."""
        return f"{KEY}={format_value(asdict(self))}"

    @classmethod
    def from_config(cls, node: DictConfig) -> TrialLink:
        values = OmegaConf.to_container(node, resolve=True)
        try:
            return cls(
                study=str(values["study"]),
                storage=str(values["storage"]),
                number=int(values["number"]),
                parent_run_id=values.get("parent_run_id"),
                pruner=pruner_spec(values.get("pruner")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LstmlabError(f"trial={values}: not set by the Optuna sweeper ({error}); "
                               "run sweeps with `lstmlab train -m hparams_search=...`") from None

    @property
    def run_name(self) -> str:
        return f"trial-{self.number}"
