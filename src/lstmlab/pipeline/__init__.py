"""The pipeline: data → model → train → evaluate → track, joined by `experiment.run_experiment`."""
