"""How many jobs a Hydra launcher runs at once, read from its config node (`hydra.launcher`):
the sweeper's batch size (`hydra.sweeper.n_jobs=auto`) and a multirun's ETA follow it."""

from __future__ import annotations

from typing import Any


def parallelism(launcher: Any) -> int:
    """`n_jobs` of the joblib-based launchers (joblib's convention: -1 = every usable core),
    `array_parallelism` of submitit's; 1 for a launcher that runs jobs one after another."""
    if launcher is None:
        return 1
    if launcher.get("n_jobs") is not None:
        import joblib

        return max(1, int(joblib.effective_n_jobs(launcher.get("n_jobs"))))
    if launcher.get("array_parallelism") is not None:
        return max(1, int(launcher.get("array_parallelism")))
    return 1
