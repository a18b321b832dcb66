"""Before a study opens: the job configs are checked as a single run checks its own.

A mistyped `data.path`, a model value Keras cannot take: each would otherwise fail every
trial, use up the study's trials and count against its failure rate. Checked once here, they
are one line and no trial is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig


def check_jobs(configs: Iterable[DictConfig]) -> None:
    """Run the single-run checks (data, model, trainer) on each job config."""
    from lstmlab.pipeline.experiment import check_config

    for cfg in configs:
        check_config(cfg)
