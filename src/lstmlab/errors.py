"""The one exception type for errors a user can cause and fix, and the one way to shorten an
error from a library (Hydra, Optuna, Keras, pandas) to the line a user reads."""

from __future__ import annotations

from lstmlab.secrets import mask

EXIT_USER_ERROR = 2  # the exit status of a user error


class LstmlabError(Exception):
    """A bad config value, bad data, an unknown run: printed as one line by the command line."""


def error_line(command: str, message: str) -> str:
    """How a user error is printed on stderr: `lstmlab train: error: ...`, any URL's password masked."""
    return f"lstmlab {command}: error: {mask(message)}"


def first_line(error: BaseException, with_type: bool = False) -> str:
    """The first non-empty line of an error (of its cause when it only announces it), or its type;
    `with_type` prefixes the type for an error that is not a user's (`KeyError: 'x'`).

    Hydra's "Could not find 'variant/x'" keeps its "Available options" list on the same line
    (Hydra prints one option per line after it), and "In 'train': ..." loses the prefix.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if error.__cause__ is not None and (not lines or lines[0].endswith(":")):
        # "Error in call to target 'keras...Adam':" (Hydra's instantiate): the cause says what
        return first_line(error.__cause__, with_type)
    if not lines:
        return type(error).__name__
    text = lines[0]
    if text.startswith("In '") and ": " in text:  # "In 'train': Could not find 'optimizer/foo'"
        text = text.split(": ", 1)[1]
    if len(lines) > 1 and lines[1].startswith("To append"):  # "... use +model.unitz=1"
        text += f" ({lines[1]})"
    options = _available_options(lines)
    if options:
        text += f"; available: {', '.join(options)}"
    return f"{type(error).__name__}: {text}" if with_type and not isinstance(error, LstmlabError) else text


def _available_options(lines: list[str]) -> list[str]:
    """The options Hydra lists after "Available options in 'group':" (up to the search path)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Available options")]
    if not starts:
        return []
    options = []
    for line in lines[starts[0] + 1 :]:
        if line.endswith(":") or "provider=" in line or line.startswith("Config search path"):
            break
        options.append(line)
    return options
