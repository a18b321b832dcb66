"""The sweeper's handlers catch what each step really raises, and only that: a user's mistake in a
search space, a confirm baseline, a storage URL or an unreachable database is one line
(LstmlabError), found without training. Composed as the sweeper composes (Hydra's
`load_sweep_config` against the multirun's config), so the error types are Hydra's own."""

from __future__ import annotations

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.types import RunMode
from omegaconf import OmegaConf

from hydra_plugins.lstmlab_optuna_sweeper._settings import resolve_confirm
from hydra_plugins.lstmlab_optuna_sweeper._space import parse_space, validate
from hydra_plugins.lstmlab_optuna_sweeper._storage import StudyLock, open_storage, resolve_url
from lstmlab.errors import LstmlabError
from lstmlab.paths import config_dir
from lstmlab.sweep.link import TrialLink
from lstmlab.sweep.trial import connect

CLOSED_PORT = "postgresql+psycopg2://user@127.0.0.1:9/optuna"  # the discard port: nothing listens


@pytest.fixture(scope="module")
def compose():
    """The job config for some overrides, as the sweeper's `compose` makes it."""
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(config_dir()))
    master = loader.load_configuration("train", overrides=[], run_mode=RunMode.MULTIRUN)
    return lambda overrides: loader.load_sweep_config(master_config=master, sweep_overrides=list(overrides))


MISTAKES = [
    ("model=nosuch", "Could not find 'model/nosuch'"),  # Hydra's MissingConfigException
    ("nosuchkey=1", "Could not override 'nosuchkey'"),  # ConfigCompositionException
    ("~trainer.epochs=5", "Could not delete from config"),  # ConfigCompositionException over OmegaConf's
    ("optimizer=3", "Config group override must be a string or a list"),  # Hydra's plain ValueError
]


@pytest.mark.parametrize(("fixed", "said"), MISTAKES, ids=["no-option", "no-key", "delete", "group-number"])
def test_a_space_that_does_not_compose_is_one_line_naming_the_override(compose, fixed, said):
    space = parse_space({"model.dropout": "interval(0.0, 0.2)"}, [fixed])
    with pytest.raises(LstmlabError, match="the fixed overrides") as caught:
        validate(space, compose)
    assert str(caught.value).startswith(fixed) and said in str(caught.value)


@pytest.mark.parametrize(("baseline", "said"), [
    *MISTAKES, ("model.units=[4", "is not a list of overrides"), ("variant=a,b", "sweeps; the baseline is one"),
])
def test_a_confirm_baseline_that_does_not_compose_or_parse_is_one_line(compose, baseline, said):
    options = OmegaConf.create({"top_k": 2, "seeds": 2, "baseline": baseline})
    with pytest.raises(LstmlabError, match="hydra.sweeper.confirm.baseline") as caught:
        resolve_confirm(options, [], compose)
    assert said in str(caught.value)


@pytest.mark.parametrize("url", ["not a url", "postgresql://user@host:port/optuna", ""])
def test_a_storage_that_is_no_url_is_one_line(url):
    with pytest.raises(LstmlabError, match="is not a database URL"):
        resolve_url(url)


@pytest.mark.parametrize("url", [CLOSED_PORT, "mysql+nosuchdriver://user@127.0.0.1:9/optuna"],
                         ids=["refused", "no-such-driver"])
def test_a_storage_that_does_not_answer_is_one_line(url):
    with pytest.raises(LstmlabError):
        open_storage(url, heartbeat_interval=10, retry_s=1)
    with pytest.raises(LstmlabError), StudyLock(url, "study", retry_s=1):
        pass


def test_a_job_whose_study_is_not_in_the_storage_is_one_line(tmp_path):
    link = TrialLink(study="nosuch", storage=f"sqlite:///{tmp_path / 'optuna.db'}", number=0, storage_retry_s=1)
    with pytest.raises(LstmlabError, match="cannot reach Optuna trial 0 of study 'nosuch'"):
        connect(link)
