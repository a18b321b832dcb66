"""One subcommand run: its arguments read, its module imported, its end turned into an exit code.

User errors (LstmlabError, Hydra config errors) become one line on stderr and exit code 2 here,
in one place; `--debug` or HYDRA_FULL_ERROR=1 shows the traceback instead. lstmlab.cli imports
this module only for a subcommand (`lstmlab --help` and `--version` answer without it).
"""

from __future__ import annotations

import importlib
import os
import sys
from errno import ENOSPC
from pathlib import Path

from lstmlab import console, interrupts
from lstmlab.commands.parsers import PARSERS
from lstmlab.commands.quoting import unreadable_override_message
from lstmlab.errors import EXIT_USER_ERROR, LstmlabError, error_line, first_line


def run_command(command: str, args: list[str], debug: bool, verbose: bool) -> int:
    """Run `lstmlab COMMAND ARGS` (COMMAND one of commands.COMMANDS); its exit status."""
    interrupts.install()  # Ctrl-C acted on at safe points, never lost; SIGTERM handled like it
    show_traceback = debug or os.environ.get("HYDRA_FULL_ERROR") == "1"
    if show_traceback:
        os.environ["LSTMLAB_DEBUG"] = "1"  # jobs (Hydra task functions) read it: raise, don't print
    if verbose:
        os.environ["LSTMLAB_VERBOSE"] = "1"  # lstmlab.console reads it
    if command != "ui":  # `mlflow ui` keeps its own logging
        console.setup()
    try:
        parser = PARSERS.get(command)  # train's arguments are Hydra's, ui's mlflow ui's
        # Read before the command's module is imported: --help and a usage error answer at once.
        arguments = parser().parse_args(args) if parser is not None else args
        with interrupts.at_once():  # importing a command's libraries writes nothing
            # The command's module, by its name: it imports its libraries (MLflow, pandas) at its top.
            module = importlib.import_module(f"lstmlab.commands.{command}")
        code: int = module.main(arguments) or 0
        interrupts.check()  # a Ctrl-C that came after the last safe point: the command still says so
        return code
    except KeyboardInterrupt as stop:
        if show_traceback:
            raise
        return stopped(command, stop)
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        asked = interrupts.pending()
        if asked is not None and not show_traceback:  # a stop was asked: what failed on the way out is its doing
            return stopped(command, asked)
        message = user_error_message(error)
        if message is None or show_traceback:
            raise
        print(error_line(command, message), file=sys.stderr)
        return EXIT_USER_ERROR


def stopped(command: str, stop: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: runs and trials were closed on the way out (KILLED, queued again); the
    command only says it stopped, and exits 130 or 143."""
    what = "terminated" if isinstance(stop, interrupts.Terminated) else "interrupted"
    print(f"lstmlab {command}: {what}", file=sys.stderr)
    return interrupts.exit_code(stop)


def user_error_message(error: BaseException) -> str | None:
    """One line for an error the user caused; None for a bug (which keeps its traceback).

    What it sorts by is imported here, once there is an error to sort: Hydra (a few tenths of a
    second) and the store's faults are not loaded by `lstmlab compare --help` and the like."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from lstmlab.tracking.faults import no_space

    seen: BaseException | None = error
    while seen is not None:  # Hydra wraps job errors; the cause says what went wrong
        if isinstance(seen, LstmlabError):
            return str(seen)
        if isinstance(seen, OverrideParseException):
            return unreadable_override_message(seen.override)
        if isinstance(seen, OSError) and seen.errno == ENOSPC:  # a full disk (Hydra's folders): no bug
            return no_space(Path(seen.filename).absolute() if isinstance(seen.filename, str) else None).line()
        if isinstance(seen, MissingConfigException):
            return first_line(seen)
        if isinstance(seen, (HydraException, OmegaConfBaseException)):
            return " ".join(str(seen).split())
        seen = seen.__cause__ or seen.__context__
    return None
