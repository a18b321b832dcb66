"""lstmlab's `hydra/launcher=parallel`: Hydra's joblib launcher (loky processes, every core by
default) that stops cleanly on Ctrl-C: each job ends its MLflow run before its process goes."""
