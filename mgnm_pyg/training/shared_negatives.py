"""The negatives of ``--loss sampled-softmax``: drawn per batch, shared by its records.

Each epoch's draw depends only on ``(seed, epoch)``, so a resumed run replays it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mgnm_pyg.data.negatives import sample_shared_negatives, shared_negative_distribution
from mgnm_pyg.models.loss import SharedNegatives
from mgnm_pyg.training.acceleration import to_device
from mgnm_pyg.training.config import TrainConfig


class SharedNegativeSampler:
    """``config.shared_negatives`` items per batch from ``config.negative_sampling`` over
    the training targets, with their log-probabilities when ``logq_correction`` is on."""

    def __init__(self, dataset: Any, config: TrainConfig, device: torch.device) -> None:
        self.config, self.device = config, device
        self.probabilities = shared_negative_distribution(
            dataset, dataset.records["train"], config.negative_sampling)
        self.log_q = None
        if config.logq_correction:
            # item 0 (padding, probability 0) is never drawn nor a target: log q = 0 there
            probs = np.where(self.probabilities > 0, self.probabilities, 1.0)
            self.log_q = torch.from_numpy(np.log(probs)).float().to(device)
        self.draws: np.ndarray | None = None

    def start_epoch(self, epoch: int, n_batches: int) -> None:
        """Draw the negatives of every batch of ``epoch``."""
        rng = np.random.default_rng([self.config.seed, epoch, 2])
        self.draws = sample_shared_negatives(self.probabilities, n_batches,
                                             self.config.shared_negatives, rng)

    def batch(self, step: int) -> SharedNegatives:
        """The negatives of batch ``step`` (from 1) of the current epoch, on the device."""
        items = to_device(torch.from_numpy(self.draws[step - 1]), self.device)
        return SharedNegatives(items, self.log_q)
