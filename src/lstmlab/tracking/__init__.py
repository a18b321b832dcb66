"""The MLflow store a command works on: opened once per process, safely (see `open.py`)."""
