"""Everything that needs Keras: the model, training, the run's MLflow record and its plots.

run_experiment imports this package once per job, after runtime.use_backend chose the backend
and runtime.import_keras imported it; no other module of lstmlab imports it (import-linter holds
that: pyproject.toml). What it offers run_experiment is `check` (what only Keras can check,
before a run starts) and `record` (one MLflow run: every fold trained, evaluated, recorded).

    run.py     check and record: the folds of one run
    track.py   what a run leaves in MLflow (names: docs/contracts.md)
    train.py   optimizer and loss, seeds, fit with the project's callbacks, predict
    model.py   the stacked LSTM, as the seed document has it
    plots.py   predictions.png and loss.png
"""

from lstmlab.pipeline.keras_side.run import check, record

__all__ = ["check", "record"]
