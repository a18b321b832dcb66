"""The names a run leaves in MLflow (fixed by DESIGN.md): pipeline.track writes them, the
commands read them back. No imports, so any module may use them cheaply."""

CONFIG_ARTIFACT = "config.yaml"
SCALER_ARTIFACT = "scaler.joblib"
PREDICTIONS_ARTIFACT = "predictions.csv"
MODEL_NAME = "model"
DATA_TAG = "data_sha256"  # the tag holding the fingerprint of the run's data
# Final metric names fixed by DESIGN.md: run_experiment logs them, compare and rerun read them.
FINAL_METRICS = (
    "val_rmse",
    "test_rmse",
    "test_mae",
    "test_mape",
    "test_r2",
    "test_directional_accuracy",
    "naive_test_rmse",
    "naive_test_mae",
    "test_skill",
    "train_seconds",
    "epochs_run",
)
# `lstmlab rerun --check`: identical is expected; the margin only forgives float formatting, not a
# different result. Here (no imports) so that `rerun --help` can name it cheaply.
REL_TOLERANCE = 1e-6
