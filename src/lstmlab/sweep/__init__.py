"""The sweep protocol shared by the Hydra sweeper plugin (src/hydra_plugins) and the trial job:
the trial link, pruner/sampler specs, and `run_trial`."""
