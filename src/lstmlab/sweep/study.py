"""Study identity: a study's default name says what it searches and on which data, and the
study records the data's fingerprint, so a sweep never silently continues on other data."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from lstmlab.errors import LstmlabError

DATA_ATTR = "data_sha256"  # the study's user attribute: the fingerprint of the data it ran on


def default_name(search: str | None, data_cfg: DictConfig) -> str:
    """e.g. variants-sp500, wide-synthetic, variants-csv-prices; `sweep-...` without hparams_search."""
    from lstmlab.pipeline.data import data_name

    return f"{search or 'sweep'}-{data_name(data_cfg)}"


def data_fingerprint(data_cfg: DictConfig) -> str:
    """The fingerprint every run on these data is tagged with (data_sha256): of the table read,
    before any split or window. `data_cfg` comes from the sweep's fixed overrides alone, a
    config preflight did not see: checked here."""
    from lstmlab.pipeline.checks import check_data
    from lstmlab.pipeline.data import training_table

    check_data(data_cfg)
    return training_table(data_cfg).sha256


def check_data(study: Any, fingerprint: str, where: str) -> None:
    """Record the data on a new study; refuse one that ran on other data."""
    recorded = study.user_attrs.get(DATA_ATTR)
    if recorded is None:
        study.set_user_attr(DATA_ATTR, fingerprint)
    elif recorded != fingerprint:
        raise LstmlabError(
            f"study {study.study_name!r} in {where} ran on other data (fingerprint "
            f"{recorded[:12]}, these data {fingerprint[:12]}); start a new study for them with "
            f"hydra.sweeper.study_name={study.study_name}-{fingerprint[:6]} (or any new name)"
        )
