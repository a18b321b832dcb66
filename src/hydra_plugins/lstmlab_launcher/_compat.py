"""Compat: the private hydra-joblib-launcher API the parallel launcher relies on, in one place.

`hydra_joblib_launcher._core` is private: `execute_job` runs one job as Hydra's joblib launcher
runs it (the job's config composed from the master config and its overrides, Hydra's globals
restored in the worker), and `process_joblib_cfg` turns the string options joblib wants as numbers
into numbers. Its `launch` hands every option of `JobLibLauncherConf` to `joblib.Parallel`, and so
does this launcher; upstream's main already added an option that is not one of Parallel's
(`inner_max_num_threads`, popped in `_core.launch`). So pyproject bounds the plugin's version, and
tests/sweep/test_compat.py fails when any of this changes, here rather than in a user's sweep.

`joblib.externals.loky` is joblib's vendored copy of loky: `get_reusable_executor` is the process
pool `joblib.Parallel(backend="loky")` runs on, a `concurrent.futures.Executor` (the launcher's
`job_pool` submits to it job by job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra_plugins.hydra_joblib_launcher import _core

# The options of JobLibLauncherConf, each passed to joblib.Parallel as it is.
PARALLEL_OPTIONS = ("n_jobs", "backend", "prefer", "require", "verbose", "timeout", "pre_dispatch",
                    "batch_size", "temp_folder", "max_nbytes", "mmap_mode")

# `execute_job(idx, overrides, hydra_context, config, task_function, singleton_state) -> JobReturn`
execute_hydra_job = _core.execute_job


def parallel_options(joblib_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`hydra.launcher`'s joblib options as `joblib.Parallel` takes them, on loky processes
    (threads would share one Keras)."""
    options = {**joblib_cfg, "backend": "loky"}
    _core.process_joblib_cfg(options)
    return options


def reusable_executor(workers: int) -> Any:
    """loky's process pool of `workers` processes (the one joblib's loky backend reuses)."""
    from joblib.externals.loky import get_reusable_executor

    return get_reusable_executor(max_workers=workers)
