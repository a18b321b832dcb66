"""Compat: the private Hydra (and argparse) APIs behind `lstmlab`'s front door, and what differs
between Hydra 1.3 and 1.4 there, in one place.

`lstmlab train` reads Hydra's own flags before Hydra runs (to print `--info` once, to answer
`-sc install=bash` for the `lstmlab` command), and tab completion asks Hydra's completion query
for the groups, keys, values and files after `lstmlab train`, and argparse parsers for their
flags. Neither exposes these publicly; when an upgrade moves one, tests/commands/test_completion.py fails
here. A multirun's progress line counts the jobs Hydra's basic sweeper will launch, which it keeps
to itself (planned_jobs, empty_sweeps; tests/pipeline/test_skip_finished.py checks them).
Hydra's modules are imported inside the functions: completion imports this module on every <TAB>.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig


def _hydra_release() -> tuple[int, int]:
    major, minor = metadata.version("hydra-core").split(".")[:2]
    return int(major), int(minor)


# `version_base` for hydra.main and initialize_config_dir. Hydra 1.3 needs "1.3" (without it: a
# warning, and 1.1's defaults such as the job's folder as working directory); 1.4 deprecates the
# argument (a warning; 1.5 removes it) and keeps 1.3's defaults. tests/commands/test_cli.py
# composes with it, warnings as errors.
VERSION_BASE: dict[str, str] = {} if _hydra_release() >= (1, 4) else {"version_base": "1.3"}


@dataclass(frozen=True)
class Option:
    """A flag of a command line, as completion offers it."""

    names: tuple[str, ...]  # "--multirun", "-m"
    takes_value: bool
    choices: tuple[str, ...]  # the values it accepts, when it says so


def hydra_parser() -> argparse.ArgumentParser:
    """Hydra's command-line parser, the one `@hydra.main` parses with."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


def hydra_arguments(args: list[str]) -> argparse.Namespace:
    """`args` as the installed Hydra reads them (`.info`, `.shell_completion`, `.overrides`, ...):
    Hydra 1.4 takes overrides on both sides of a flag (`a=1 -m b=2`), 1.3 only on one."""
    parser = hydra_parser()
    return (parser.parse_intermixed_args if _hydra_release() >= (1, 4) else parser.parse_args)(args)


def parser_options(parser: argparse.ArgumentParser) -> list[Option]:
    """The flags of an argparse parser (Hydra's or one of lstmlab's subcommands)."""
    options = []
    for action in parser._actions:  # argparse keeps them nowhere public
        if action.option_strings:
            options.append(Option(names=tuple(action.option_strings), takes_value=action.nargs != 0,
                                  choices=tuple(str(c) for c in action.choices or ())))
    return options


def subcommand(parser: argparse.ArgumentParser, words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of the subcommand `words` start with (`lstmlab evidence save ...`) and the words
    after its name; `parser` and `words` themselves when there is none."""
    for action in parser._actions:  # argparse keeps its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction) and words and words[0] in action.choices:
            return subcommand(action.choices[words[0]], words[1:])
    return parser, words


def positional_choices(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    """The values a positional argument accepts, where the parser names them (`bash zsh fish`)."""
    return tuple(str(choice) for action in parser._actions if not action.option_strings
                 for choice in action.choices or ())


def hydra_completions(config_dir: str, config_name: str, line: str) -> list[str]:
    """What Hydra's own completion offers for `line`, the words after the app's name: config
    groups (`variant=`), their options (`variant=tanh`), keys (`model.units=`), current values,
    and files for a value that starts like a path (`data.path=./`)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.plugins.completion_plugin import DefaultCompletionPlugin

    with initialize_config_dir(config_dir=config_dir, **VERSION_BASE):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None  # initialize_config_dir has just set it
        loader = hydra.config_loader
        return DefaultCompletionPlugin(loader)._query(config_name=config_name, line=line)


def composed(config_dir: str, config_name: str, overrides: list[str]) -> DictConfig:
    """The config of one run of `lstmlab train OVERRIDES` (Hydra's public compose), its sweeps
    (`trainer.seed=1,2`, `variant=glob(*)`) left out."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    single = [str(o.input_line) for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=config_dir, **VERSION_BASE):
        return compose(config_name=config_name, overrides=single)


BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def planned_jobs(config: Any) -> int | None:
    """How many jobs Hydra's basic sweeper launches for this multirun (`config`: the multirun's,
    as `on_multirun_start` gets it); None under another sweeper. The sweeper keeps the count to
    itself, so it is worked out here the way `BasicSweeper.sweep` works out its batches."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    overrides = _basic_sweep(config)
    return None if overrides is None else len(BasicSweeper.split_arguments(overrides, None)[0])


def empty_sweeps(config: Any) -> list[str]:
    """The sweeps of this multirun that give no value (`variant=glob(nomatch*)`), as written:
    each makes the basic sweeper launch no job at all."""
    overrides = _basic_sweep(config) or []
    last = {override.get_key_element(): override for override in overrides}  # a later one wins, as in the sweeper
    return [str(override.input_line) for override in last.values()
            if override.is_sweep_override() and not list(override.sweep_string_iterator())]


def _basic_sweep(config: Any) -> list[Any] | None:
    """The multirun's overrides (`hydra.sweeper.params`, then the command line), parsed as the
    basic sweeper parses them (globs against the config groups); None under another sweeper."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if config.hydra.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return list(parser.parse_overrides([*params, *config.hydra.overrides.task]))
