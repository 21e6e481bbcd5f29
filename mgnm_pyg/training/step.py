"""One training step, shared by the trainer and the runtime benchmark (Table 4).

A step takes a batch of :func:`~mgnm_pyg.data.collate.dense_batch` (``users``,
``histories``, ``targets``) and each record's training negatives, and makes the
candidates (the positive in column 0, then the negatives) and their labels, copies them
to the device, runs the loss under ``--amp``'s autocast, and takes one optimiser step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mgnm_pyg.training.acceleration import autocast, to_device
from mgnm_pyg.training.config import TrainConfig


def train_step(loss_fn: Callable, optimizer: torch.optim.Optimizer | None,
               batch: dict[str, Tensor], negatives: np.ndarray, config: TrainConfig,
               device: torch.device, weight: float = 1.0,
               shared: Any = None) -> tuple[Tensor, dict, int]:
    """Forward, backward and optimiser step on one batch; ``(loss, parts, rows)`` of
    ``loss_fn`` (:class:`~mgnm_pyg.training.distributed.DistributedLoss` or its DDP
    wrapper), called with ``config.loss``, the data ``weight`` and ``shared``, the
    batch's :class:`~mgnm_pyg.models.loss.SharedNegatives` (``--loss sampled-softmax``).

    ``negatives`` is ``int64 [B, n]``; ``optimizer`` None (a model without trainable
    parameters) takes no step. The learning rate is the optimiser's as it stands.
    """
    candidates = torch.cat([batch["targets"][:, None],
                            torch.from_numpy(np.ascontiguousarray(negatives, dtype=np.int64))], 1)
    users = to_device(batch["users"], device)
    histories = to_device(batch["histories"], device)
    items = to_device(candidates, device)
    labels = torch.zeros(items.shape, dtype=torch.float32, device=device)
    labels[:, 0] = 1.0
    with autocast(device, config.amp):
        loss, parts, rows = loss_fn(users, histories, items, labels, config.loss, weight,
                                    shared)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loss, parts, rows
