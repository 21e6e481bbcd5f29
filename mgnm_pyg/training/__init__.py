"""Training: run configuration, building a run, the training step and loop, stopping,
evaluation, checkpoints and reading a saved run back."""
