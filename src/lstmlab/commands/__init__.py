"""One module per `lstmlab` subcommand: argument parsing and printing only.

Each module named in COMMANDS has `main(args) -> exit status`; lstmlab.cli imports it when used.
"""

COMMANDS = ("train", "compare", "rerun", "forecast", "ui", "completion", "evidence")
