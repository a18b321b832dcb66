"""lstmlab's Hydra sweeper on current Optuna: pruning, resume, parallel workers, MLflow parents.

Select it with `defaults: - override /hydra/sweeper: lstmlab_optuna` (conf/hparams_search/*).
Hydra imports every public module here at start-up, so those stay light (no Optuna, no MLflow);
the work happens in the private modules, imported when a sweep starts.
"""
