"""The `lstmlab` command: usage and version answered at once, subcommands dispatched by name.

What runs a subcommand (its arguments, its module, one-line user errors and exit codes) is
lstmlab.commands.dispatch, imported only for one; the console script exits quickly (`run`).
"""

from __future__ import annotations

import atexit
import os
import sys

from lstmlab import interrupts
from lstmlab.commands import COMMANDS
from lstmlab.errors import EXIT_USER_ERROR

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
    # What runs a command (Hydra's and OmegaConf's errors, the console, the store's faults) is not
    # imported for the answers above: `lstmlab --help` takes a few hundredths of a second.
    from lstmlab.commands import dispatch

    return dispatch.run_command(command, args, debug=debug, verbose=verbose)


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
