"""The `lstmlab` command: subcommands dispatched by name; heavy libraries imported only when used.

User errors (LstmlabError, Hydra config errors) become one line on stderr and exit code 2 here,
in one place; `--debug` or HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
from errno import ENOSPC
from pathlib import Path

from lstmlab.commands import COMMANDS
from lstmlab.errors import EXIT_USER_ERROR, LstmlabError, error_line, first_line

ExitCode = int | str | None  # what SystemExit carries and sys.exit takes

USAGE = """usage: lstmlab COMMAND [ARGS]

LSTM stock-price forecasting experiments (Hydra configs, Optuna sweeps, MLflow records).

commands:
  train [OVERRIDES]          one run; `lstmlab train` is the documented baseline on S&P 500.
                             Hydra grammar: -m variant='glob(*)', -m hparams_search=variants,
                             --cfg job, --help
  compare [OPTIONS]          runs against the baseline on its data: each setting's effect over
                             seeds with its interval and strength; the models over days
  rerun RUN_ID [--check]     rerun a run from its logged config.yaml
  forecast RUN_ID [--data P] next-step price from a logged model
  evidence save|load|table DIR
                             a campaign's runs as text in the repository: save from the store,
                             load into any store (then train continues it), recompute its table
  ui [MLFLOW UI OPTIONS]     mlflow ui on the project's store
  completion bash|zsh|fish   tab completion: eval "$(lstmlab completion bash)"

Add -v (or --verbose) to any command to see the frameworks' log lines (TensorFlow, MLflow),
--debug for those and a full traceback. `lstmlab --version` prints the installed version.
"""



def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    verbose = debug or "-v" in argv or "--verbose" in argv
    argv = [a for a in argv if a not in ("--debug", "-v", "--verbose")]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        from importlib import metadata

        print(f"lstmlab {metadata.version('lstmlab')}")
        return 0
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"lstmlab: error: unknown command {command!r}; see `lstmlab --help`", file=sys.stderr)
        return EXIT_USER_ERROR
    from lstmlab import interrupts

    interrupts.install()  # Ctrl-C acted on at safe points, never lost; SIGTERM handled like it
    show_traceback = debug or os.environ.get("HYDRA_FULL_ERROR") == "1"
    if show_traceback:
        os.environ["LSTMLAB_DEBUG"] = "1"  # jobs (Hydra task functions) read it: raise, don't print
    if verbose:
        os.environ["LSTMLAB_VERBOSE"] = "1"  # lstmlab.console reads it
    if command != "ui":  # `mlflow ui` keeps its own logging
        from lstmlab import console

        console.setup()
    try:
        with interrupts.at_once():  # importing a command's libraries writes nothing
            module = importlib.import_module(f"lstmlab.commands.{command}")
        code = module.main(args) or 0
        interrupts.check()  # a Ctrl-C that came after the last safe point: the command still says so
        return code
    except KeyboardInterrupt as stop:
        if show_traceback:
            raise
        return _stopped(command, stop)
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        asked = interrupts.pending()
        if asked is not None and not show_traceback:  # a stop was asked: what failed on the way out is its doing
            return _stopped(command, asked)
        message = user_error_message(error)
        if message is None or show_traceback:
            raise
        print(error_line(command, message), file=sys.stderr)
        return EXIT_USER_ERROR


def _stopped(command: str, stop: KeyboardInterrupt) -> int:
    """Ctrl-C or SIGTERM: runs and trials were closed on the way out (KILLED, queued again); the
    command only says it stopped, and exits 130 or 143."""
    from lstmlab import interrupts

    what = "terminated" if isinstance(stop, interrupts.Terminated) else "interrupted"
    print(f"lstmlab {command}: {what}", file=sys.stderr)
    return interrupts.exit_code(stop)


def user_error_message(error: BaseException) -> str | None:
    """One line for an error the user caused; None for a bug (which keeps its traceback)."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    seen: BaseException | None = error
    while seen is not None:  # Hydra wraps job errors; the cause says what went wrong
        if isinstance(seen, LstmlabError):
            return str(seen)
        if isinstance(seen, OverrideParseException):
            from lstmlab.commands.quoting import unreadable_override_message

            return unreadable_override_message(seen.override)
        if isinstance(seen, OSError) and seen.errno == ENOSPC:  # a full disk (Hydra's folders): no bug
            from lstmlab.tracking.faults import no_space

            return no_space(Path(seen.filename).absolute() if isinstance(seen.filename, str) else None).line()
        if isinstance(seen, MissingConfigException):
            return first_line(seen)
        if isinstance(seen, (HydraException, OmegaConfBaseException)):
            return " ".join(str(seen).split())
        seen = seen.__cause__ or seen.__context__
    return None


def run() -> None:
    """The console script: `main`, then a quick exit.

    Once a command is done, the interpreter's teardown of TensorFlow/JAX and MLflow (module
    cleanup, C++ destructors) costs 1-3 s of nothing. atexit handlers still all run (they flush
    logs and MLflow's queues); then the process ends with main's status, skipping only that.
    """
    status: dict[str, ExitCode] = {"code": 1}  # a traceback (a bug) exits 1, as Python would
    atexit.register(_exit_now, status)  # registered first, so it runs after every other handler
    try:
        status["code"] = main()
    except SystemExit as stop:
        status["code"] = stop.code
        raise
    except KeyboardInterrupt as stop:
        from lstmlab import interrupts

        status["code"] = interrupts.exit_code(stop)
        raise
    sys.exit(status["code"])


def _exit_now(status: dict[str, ExitCode]) -> None:
    code = status["code"]
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


if __name__ == "__main__":
    run()
