"""Reading runs back from MLflow (names: docs/contracts.md): the store, rerun, forecast, evidence."""
