"""Training: run configuration, checkpoints, the training loop, runs, recommendation."""
