"""Experiments built on the trainer: hyper-parameter search (``tune``)."""
