"""A confirm job: one run of a sweep's confirm stage, as its `confirm` node says.

After a study's n_trials, the sweeper retrains its best trials and the baseline on fresh seeds
(hydra_plugins.lstmlab_optuna_sweeper._confirm). Each such job is a plain run, trained as any
other, but nested under the study's MLflow parent run and tagged with the trial it retrains
(`confirm.trial`) or `confirm.baseline=true`: what `lstmlab compare --sweep S --confirm` judges.
lstmlab.sweep.link.ConfirmLink writes the `confirm=...` override and reads the job's node.
"""

from __future__ import annotations

from omegaconf import DictConfig

from lstmlab.pipeline.experiment import RunResult, run_experiment
from lstmlab.sweep.link import CONFIRM_KEY, ConfirmLink


def run_confirm(cfg: DictConfig) -> RunResult:
    """Train the job as its confirm run, nested under the sweep's parent run with its tags."""
    link = ConfirmLink.from_config(cfg[CONFIRM_KEY])
    return run_experiment(cfg, run_name=link.name, tags=link.tags, parent_run_id=link.parent_run_id)
