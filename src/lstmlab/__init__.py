"""lstmlab: hyperparameter experiments for LSTM stock-price forecasting.

Wings: `pipeline/` (data → model → train → evaluate → track, joined by
`pipeline.experiment.run_experiment`, the one function that turns a config into a result),
`comparison/` (runs against the baseline), `sweep/` (the protocol the Optuna sweeper plugin and
the trial job share), `records/` (reading runs back: rerun, forecast), `commands/` (one module
per `lstmlab` subcommand). Commands import wings; wings never import commands. The Hydra plugins
(src/hydra_plugins) import only `sweep/`, `errors`, `runtime` and `interrupts`.
"""

__version__ = "0.1.0"
