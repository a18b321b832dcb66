"""Reading runs back from MLflow: names fixed by DESIGN.md, the store, rerun and forecast."""
