"""What a <TAB> after `lstmlab ...` offers: the words the shell scripts of `completion.py` ask for.

The subcommands and their flags come from their argparse parsers (commands.parsers) (and `mlflow ui`'s for
`lstmlab ui`); after `lstmlab train` Hydra's completion answers, as it does for any Hydra app:
config groups (`variant=`), their options, keys (`model.units=`), current values, files. Nothing
here opens a store or trains: a completion must answer in the time of a keystroke.
"""

from __future__ import annotations

import os
import re
from importlib import metadata

from lstmlab.commands import COMMANDS
from lstmlab.commands.hydra_compat import (
    Option,
    composed,
    hydra_arguments,
    hydra_completions,
    hydra_parser,
    parser_options,
    positional_choices,
    subcommand,
)
from lstmlab.commands.parsers import PARSERS
from lstmlab.paths import cache_home, config_dir
from lstmlab.sweep.override_text import format_value

GLOBAL_FLAGS = ("-v", "--verbose", "--debug")  # taken out by lstmlab.cli wherever they stand
# What bash splits a word at when it completes (its COMP_WORDBREAKS), when the script cannot say.
BASH_WORDBREAKS = " \t\n\"'><=;|&(:"


def candidates(line: str) -> list[str]:
    """The words that may complete the last word of `line` (the command line up to the cursor)."""
    words = line.split()
    current = "" if not words or line[-1].isspace() else words.pop()
    words = [w for w in words[1:] if w not in GLOBAL_FLAGS]  # the program's name, the global flags
    if not words:
        return _matching([*COMMANDS, "--help", "--version", *GLOBAL_FLAGS], current)
    command, rest = words[0], words[1:]
    if command == "train":
        return _train(rest, current)
    if command == "ui":
        return _flags(_mlflow_ui_options(), rest, current)
    if command in PARSERS:
        parser, rest = subcommand(PARSERS[command](), rest)
        return _flags(parser_options(parser), rest, current, positional_choices(parser))
    return []


def for_shell(found: list[str], line: str, shell: str, wordbreaks: str | None = None) -> list[str]:
    """`found` as the shell takes it: bash completes only the part of a word after its last word
    break (`variant=tanh` is `tanh` after `=`); zsh and fish take whole words."""
    if shell != "bash" or not line or line[-1].isspace():
        return found
    current = line.split()[-1]
    breaks = BASH_WORDBREAKS if wordbreaks is None else wordbreaks
    cut = max((current.rfind(c) for c in breaks if not c.isspace()), default=-1) + 1
    return [word[cut:] if word.startswith(current[:cut]) else word for word in found]


def _matching(words: list[str] | tuple[str, ...], current: str) -> list[str]:
    return [word for word in words if word.startswith(current)]


def _train(rest: list[str], current: str) -> list[str]:
    """Hydra's flags, or Hydra's own completion of the overrides after `lstmlab train`."""
    options = parser_options(hydra_parser())
    if current.startswith("-") or _value_expected(options, rest):
        return _flags(options, rest, current)
    try:
        found = hydra_completions(config_dir(), "train", " ".join([*rest, current]) if rest or current else "")
        found = _lists_whole(found, rest, current)
    except (Exception, SystemExit):  # noqa: BLE001 - an earlier word Hydra cannot read: nothing to offer
        return []
    return [_with_slash(word) for word in found]


def _lists_whole(found: list[str], rest: list[str], current: str) -> list[str]:
    """A list key as an override gives it, whole: `model.units=` → `model.units=[`, and after the
    `[` its current value, `model.units=[50,50]`. Hydra completes a list as a mapping of its
    indexes (`model.units.`, `model.units=0=`), which no override can use. Only then is the
    config composed a second time, to tell a list from a mapping."""
    from omegaconf import ListConfig, OmegaConf

    key, _, value = current.partition("=")
    indexes = bool(found) and all(re.fullmatch(re.escape(current) + r"\d+[=.]", word) for word in found)
    asks_value = "=" in current and (value.startswith("[") or value == "" and indexes)
    if not asks_value and not any(word.endswith(".") for word in found):
        return found
    config = composed(config_dir(), "train", hydra_arguments(rest).overrides)

    def a_list(name: str) -> ListConfig | None:
        node = OmegaConf.select(config, name.lstrip("+~"), default=None)
        return node if isinstance(node, ListConfig) else None

    if asks_value:
        node = a_list(key)
        if node is None:
            return found
        whole = f"{key}={format_value(OmegaConf.to_container(node))}"
        return [f"{key}=["] if not value else [whole] if whole.startswith(current) else []
    return [word[:-1] + "=" if word.endswith(".") and a_list(word[:-1]) is not None else word for word in found]


def _with_slash(word: str) -> str:
    """`data.path=./data/` for a folder (Hydra offers `./data`): the next <TAB> goes inside it."""
    value = word.partition("=")[2]
    return word + "/" if value and not value.endswith("/") and os.path.isdir(value) else word


def _value_expected(options: list[Option], rest: list[str]) -> Option | None:
    """The flag just before the cursor when it wants a value (`--cfg `, `--metric `)."""
    if not rest:
        return None
    return next((o for o in options if rest[-1] in o.names and o.takes_value), None)


def _flags(options: list[Option], rest: list[str], current: str, positional: tuple[str, ...] = ()) -> list[str]:
    """A flag's values after it, the flags for a word starting with `-`, else `positional`."""
    wanting = _value_expected(options, rest)
    if wanting is not None:
        return _matching(wanting.choices, current)  # none: the shell completes file names
    if current.startswith("-"):
        return _matching([name for option in options for name in option.names], current)
    return _matching(positional, current)


def _mlflow_ui_options() -> list[Option]:
    """`mlflow ui`'s flags (lstmlab ui passes them on). Importing MLflow's command line takes
    seconds, so they are read once per MLflow version and kept in lstmlab's cache."""
    cached = cache_home() / "completion" / f"mlflow-{metadata.version('mlflow')}-ui.txt"
    if not cached.is_file():
        import click
        from mlflow.cli import cli

        ui = cli.get_command(click.Context(cli), "ui")
        lines = [" ".join([*p.opts, *p.secondary_opts]) + ("" if getattr(p, "is_flag", False) else " =")
                 for p in ui.params if p.param_type_name == "option"]
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")  # two <TAB>s at once: each file whole
        partial.write_text("\n".join(lines) + "\n")
        partial.replace(cached)
    options = []
    for text in cached.read_text().splitlines():
        names = text.split()
        takes_value = names[-1] == "="
        options.append(Option(names=tuple(n for n in names if n != "="), takes_value=takes_value, choices=()))
    return options
