"""The names a run leaves in MLflow (docs/contracts.md, "A run in MLflow"): pipeline.keras_side.track
writes them, the commands read them back. No imports, so any module may use them cheaply."""

CONFIG_ARTIFACT = "config.yaml"
SCALER_ARTIFACT = "scaler.json"  # the fitted scalers as numbers (pipeline.scalers)
PICKLED_SCALER_ARTIFACT = "scaler.joblib"  # runs recorded before scaler.json: never unpickled
PREDICTIONS_ARTIFACT = "predictions.csv"
MODEL_NAME = "model"
DATA_TAG = "data_sha256"  # the tag holding the fingerprint of the run's data
# Final metric names (docs/contracts.md, "Metrics"): run_experiment logs them, compare and rerun read them.
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

# The per-epoch curves: Keras' log key → the metric's name in MLflow (pipeline.keras_side.track).
EPOCH_METRICS = {"loss": "train_loss", "val_loss": "val_loss", "val_rmse": "val_rmse"}


def dataset_name(source: str, path: str | None = None) -> str:
    """The name of a run's data, as its MLflow dataset input (the UI's Dataset column) shows it:
    sp500, synthetic, or csv-<file stem> for a CSV (`path`, either separator; None or "None": unset)."""
    if source == "csv" and path and path not in ("None", "null"):
        file = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        dot = file.rfind(".")  # the stem as pathlib has it: a leading or trailing dot is no suffix
        return f"csv-{file[:dot] if 0 < dot < len(file) - 1 else file}"
    return source


# Params that say how a run was recorded or displayed, not what was trained: runs that differ only
# in these (and the seed) are one configuration, for compare's seed groups and for
# tracking.skip_finished alike.
NOT_CONFIGURING = frozenset(
    {
        "trainer.seed",
        "trainer.verbose",
        "tracking.uri",
        "tracking.experiment",
        "tracking.run_name",
        "tracking.log_model",
        "tracking.skip_finished",
        # The sweep's own nodes are never recorded (pipeline.params); a job that composed the
        # `confirm: null` key with code from before it (a long-lived worker) logged it as "None".
        "confirm",
    }
)
# A sweep's confirm runs (hydra.sweeper.confirm): the trial number a run retrains, or "true" on
# the baseline's runs; compare --sweep S --confirm judges exactly these.
CONFIRM_TRIAL_TAG = "confirm.trial"
CONFIRM_BASELINE_TAG = "confirm.baseline"
# The tag of the run `lstmlab compare` logs its report in: never a run to compare or reuse.
REPORT_TAG = "lstmlab.report"
# The tag of a run loaded from a campaign's records (lstmlab evidence load): its id in the records.
EVIDENCE_ID_TAG = "lstmlab.evidence.id"
# Params a run recorded before they existed: the default it ran with (docs/contracts.md, "Params").
PARAM_DEFAULTS = {"evaluation.name": "holdout", "data.target_transform": "none"}


# `lstmlab rerun --check`: identical is expected; the margin only forgives float formatting, not a
# different result. Here (no imports) so that `rerun --help` can name it cheaply.
REL_TOLERANCE = 1e-6
