"""lstmlab: hyperparameter experiments for LSTM stock-price forecasting.

The pipeline, one module each: data → model → train → evaluate → track, joined by
`experiment.run_experiment`, the one function that turns a config into a result.
"""

__version__ = "0.1.0"
