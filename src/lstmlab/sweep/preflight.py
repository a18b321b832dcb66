"""Before a study opens: the job configs are checked as a single run checks its own.

A mistyped `data.path`, a model value out of range, more walk-forward folds than the data have
rows for: each would otherwise fail every trial, use up the study's trials and count against its
failure rate. Checked once here, they are one line and no trial is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig


def check_jobs(configs: Iterable[DictConfig]) -> None:
    """The single-run checks that need no framework (every config value, the data and its
    evaluation splits) on each job config. The Keras activation name is left to the trials: importing Keras here would fix the
    backend of the sweeper's process before any trial chose it."""
    from lstmlab.pipeline.checks import check_config
    from lstmlab.pipeline.evaluation import splits

    for cfg in configs:
        check_config(cfg)
        splits(cfg)
