"""Before a study opens: the job configs are checked as a single run checks its own.

A mistyped `data.path`, a model value out of range, more walk-forward folds than the data have
rows for: each would otherwise fail every trial, use up the study's trials and count against its
failure rate. Checked once here, they are one line and no trial is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig


def check_jobs(configs: Iterable[DictConfig]) -> None:
    """A run's preflight (lstmlab.pipeline.experiment.preflight) on each job config; what needs
    Keras is left to the trials: importing it here would fix the backend of the sweeper's process
    before any trial chose it."""
    from lstmlab.pipeline.experiment import preflight

    for cfg in configs:
        preflight(cfg)
