"""errors.first_line: the one way a library's error becomes the line a user reads."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, MissingConfigException

from lstmlab.commands.hydra_compat import VERSION_BASE
from lstmlab.errors import LstmlabError, first_line
from lstmlab.paths import config_dir


def compose_error(*overrides: str) -> BaseException:
    with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE), pytest.raises(Exception) as caught:
        compose(config_name="train", overrides=list(overrides))
    return caught.value


def test_an_unknown_group_option_lists_the_options_on_one_line():
    error = compose_error("variant=nope")
    assert isinstance(error, MissingConfigException)
    line = first_line(error)
    assert line.startswith("Could not find 'variant/nope'; available: adagrad, baseline, bidirectional")
    assert "\n" not in line and "In '" not in line


def test_an_unknown_key_keeps_hydras_hint():
    error = compose_error("model.unitz=3")
    assert isinstance(error, ConfigCompositionException)
    assert first_line(error) == ("Could not override 'model.unitz'. (To append to your config use "
                                 "+model.unitz=3)")


def test_a_wrapper_that_only_announces_its_cause_gives_the_cause():
    try:
        try:
            raise ValueError("learning_rate must be a float\nmore detail")
        except ValueError as cause:
            raise RuntimeError("Error in call to target 'keras.optimizers.Adam':\nValueError(...)") from cause
    except RuntimeError as error:
        assert first_line(error) == "learning_rate must be a float"
        assert first_line(error, with_type=True) == "ValueError: learning_rate must be a float"


def test_the_type_prefixes_only_errors_that_are_not_the_users():
    assert first_line(KeyError("x"), with_type=True) == "KeyError: 'x'"
    assert first_line(LstmlabError("bad value"), with_type=True) == "bad value"
    assert first_line(ValueError()) == "ValueError"


def test_a_line_counts_1_run_and_2_runs():
    from lstmlab.plural import count

    assert [count(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert count(1, "usable row") == "1 usable row"
