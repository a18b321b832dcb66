"""ConfirmLink: what a sweep's confirm stage tells one of its jobs, the config's `confirm` node.

After a study's n_trials, the sweeper retrains its best trials and the baseline on fresh seeds
(hydra_plugins.lstmlab_optuna_sweeper._confirm). Each such job is a plain run, trained as any
other, but nested under the study's MLflow parent run and tagged with the trial it retrains
(`confirm.trial`) or `confirm.baseline=true`: what `lstmlab compare --sweep S --confirm` judges.
One class writes the `confirm=...` override and reads the job's node, as TrialLink does for trials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from omegaconf import DictConfig, OmegaConf

from lstmlab.errors import LstmlabError
from lstmlab.names import CONFIRM_BASELINE_TAG, CONFIRM_TRIAL_TAG
from lstmlab.pipeline.experiment import RunResult, run_experiment
from lstmlab.sweep.override_text import format_value

KEY = "confirm"  # the config node (conf/train.yaml: `confirm: null` outside a confirm stage)


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
        return f"{KEY}={format_value({**asdict(self), 'folder': self.name})}"

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


def run_confirm(cfg: DictConfig) -> RunResult:
    """Train the job as its confirm run, nested under the sweep's parent run with its tags."""
    link = ConfirmLink.from_config(cfg[KEY])
    return run_experiment(cfg, run_name=link.name, tags=link.tags, parent_run_id=link.parent_run_id)
