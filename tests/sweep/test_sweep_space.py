"""The sweeper's parts that need no training: the search-space grammar, override text, counting
trials towards n_trials, and the pruner spec. Real Hydra parser, real Optuna objects."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from conftest import make_config
from hydra_plugins.lstmlab_optuna_sweeper._loop import Tally
from hydra_plugins.lstmlab_optuna_sweeper._space import format_value, parse_space
from lstmlab.errors import LstmlabError
from lstmlab.paths import config_dir
from lstmlab.sweep.optuna_specs import make_pruner, pruner_spec


def test_the_variants_space_becomes_optuna_distributions():
    params = OmegaConf.load(Path(config_dir()) / "hparams_search" / "variants.yaml").hydra.sweeper.params
    space = parse_space(params, ["hparams_search=variants", "trainer.epochs=1"])
    d = space.distributions
    assert d["optimizer"] == CategoricalDistribution(["adam", "sgd", "rmsprop", "adagrad"])
    assert d["optimizer.learning_rate"] == FloatDistribution(1e-4, 3e-2, log=True)
    assert d["model.dropout"] == FloatDistribution(0.0, 0.4)
    assert d["model.bidirectional"] == CategoricalDistribution([False, True])
    # lists are kept as override text: Optuna stores only primitives
    assert "[50,25]" in d["model.units"].choices and "[64,32,16]" in d["model.units"].choices
    assert space.fixed == ["hparams_search=variants", "trainer.epochs=1"]
    overrides = space.overrides({"model.units": "[64,32,16]", "optimizer": "sgd",
                                 "optimizer.learning_rate": 0.01, "model.dropout": 0.1,
                                 "model.bidirectional": True, "model.activation": "leaky_relu",
                                 "loss": "huber"})
    assert "model.units=[64,32,16]" in overrides and "optimizer=sgd" in overrides
    assert "model.bidirectional=true" in overrides
    # the composed job config has what the trial sampled: group choice and its learning rate
    cfg = make_config(*overrides)
    assert list(cfg.model.units) == [64, 32, 16] and cfg.optimizer.name == "sgd"
    assert cfg.optimizer.learning_rate == 0.01 and cfg.loss.name == "huber"


def test_grammar_and_command_line_precedence():
    space = parse_space(
        {"a": "int(interval(1, 8))", "b": "range(0, 1, 0.25)", "c": "tag(log, int(interval(2, 64)))",
         "d": "choice(1, 2)", "e": "x,y"},
        ["d=5", "f=interval(0,1)"],  # a plain value fixes d; a sweep adds f
    )
    d = space.distributions
    assert d["a"] == IntDistribution(1, 8)
    assert d["b"] == FloatDistribution(0.0, 0.75, step=0.25)
    assert d["c"] == IntDistribution(2, 64, log=True)
    assert d["e"] == CategoricalDistribution(["x", "y"])
    assert "d" not in d and space.fixed == ["d=5"] and "f" in d


@pytest.mark.parametrize("line, distribution", [
    ("a=range(0.1, 0.5, 0.1)", FloatDistribution(0.1, 0.4, step=0.1)),  # the end excluded, as written
    ("a=range(1, 2, 0.25)", FloatDistribution(1.0, 1.75, step=0.25)),
    ("a=range(5, 0, -2)", IntDistribution(1, 5, step=2)),
    ("a=range(3)", IntDistribution(0, 2)),
])
def test_a_range_has_the_values_python_would_give_it_written_in_decimal(line, distribution):
    assert parse_space({}, [line]).distributions["a"] == distribution


@pytest.mark.parametrize("line, message", [
    ("a=interval(2, 1)", "is empty"),
    ("a=tag(log, interval(0, 1))", "lower bound above 0"),
    ("a=range(5, 1)", "has no values"),
    ("a=tag(log, choice(1, 2))", "needs an interval"),
    ("a=tag(foo, interval(0, 1))", "unknown tag"),
    ("a=interval(1)", "cannot parse"),
])
def test_malformed_distributions_are_one_line_errors(line, message):
    with pytest.raises(LstmlabError, match=message) as caught:
        parse_space({}, [line])
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", [
    "relu", "x y", "1", "true", "null", "a'b", "c:\\dir\\", "postgresql://u:p@h:5432/db?a=1&b=2",
    "", 1e-5, 0.25, 3, True, None, [64, 32], {"name": "median", "n": 5}, float("inf"),
])
def test_override_text_parses_back_to_the_same_value(value):
    parsed = OverridesParser.create().parse_override(f"k={format_value(value)}").value()
    assert parsed == value and type(parsed) is type(value)


def _trial(state: TrialState, number_of_failed: int | None = None, value: float | None = None):
    system_attrs = {} if number_of_failed is None else {
        "failed_trial": number_of_failed, "retry_history": [number_of_failed]}
    return optuna.create_trial(
        state=state, value=value, params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)}, system_attrs=system_attrs,
    )


def test_a_rerun_trial_replaces_the_interrupted_one_in_the_count():
    study = optuna.create_study()
    study.add_trial(_trial(TrialState.COMPLETE, value=2.0))
    study.add_trial(_trial(TrialState.FAIL))  # trial 1: its worker died
    study.add_trial(_trial(TrialState.PRUNED, value=3.0))
    study.add_trial(_trial(TrialState.FAIL))  # trial 3: failed by itself (diverged)
    study.add_trial(_trial(TrialState.WAITING, number_of_failed=1))  # trial 1 queued again
    tally = Tally.of(study.get_trials())
    assert (tally.complete, tally.pruned, tally.failed, tally.waiting) == (1, 1, 1, 1)
    assert tally.finished == 3 and tally.used == 4 and tally.best.number == 0


def test_pruner_specs_get_defaults_and_reject_bad_arguments():
    assert pruner_spec("median") == {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 4}
    assert pruner_spec({"name": "median", "n_warmup_steps": 0})["n_warmup_steps"] == 0
    assert pruner_spec("none") == {"name": "none"}
    assert isinstance(make_pruner(pruner_spec("hyperband")), optuna.pruners.HyperbandPruner)
    with pytest.raises(LstmlabError, match="unknown pruner 'nope'"):
        pruner_spec("nope")
    with pytest.raises(LstmlabError, match="median accepts: n_startup_trials"):
        make_pruner(pruner_spec({"name": "median", "foo": 1}))
