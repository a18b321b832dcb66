import mlflow

from conftest import tiny_config
from lstmlab.experiment import run_experiment


def test_a_tiny_run_is_recorded_finished():
    result = run_experiment(tiny_config("model.units=[4,4]"))
    run = mlflow.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["val_rmse"] == result["val_rmse"]
