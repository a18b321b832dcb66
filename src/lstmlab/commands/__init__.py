"""One module per `lstmlab` subcommand: argument parsing and printing only."""
