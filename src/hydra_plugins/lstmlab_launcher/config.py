"""The launcher's config node (`hydra.launcher.*`), registered as `hydra/launcher=parallel`."""

# No `from __future__ import annotations`: Hydra executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf


@dataclass
class ParallelLauncherConf(JobLibLauncherConf):
    """Every joblib option (`n_jobs`, `verbose`, ...); processes through loky, always."""

    _target_: str = "hydra_plugins.lstmlab_launcher.launcher.ParallelLauncher"
    # Jobs at once; -1 = one per CPU core this process may use (joblib's count: affinity and
    # container limits included), -2 = all but one, N = N.
    n_jobs: int = -1
    # After Ctrl-C or SIGTERM, seconds the running jobs get to record their runs as KILLED
    # before they are killed (the signal a second time kills them at once).
    interrupt_grace_s: int = 30


ConfigStore.instance().store(
    group="hydra/launcher", name="parallel", node=ParallelLauncherConf, provider="lstmlab"
)
