r"""MGNM's training objective (Eq. 16-17), mixed into :class:`~mgnm_pyg.models.MGNM`.

``l2_halved`` (the authors' code) halves the L2 term: TF's ``l2_loss`` is
``sum p^2 / 2``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .loss import level_names

__all__ = ["MGNMObjective"]


class MGNMObjective:
    """``regularization`` and ``loss`` of MGNM; the model provides ``encode``, ``score``,
    ``theta1``, ``theta2``, ``l2_halved`` and ``n_levels``."""

    def regularization(self, enc: Any) -> tuple[Tensor, dict[str, Tensor]]:
        r"""Eq. 17's regularisers: :math:`\theta_1 \sum |A| + \theta_2 \sum_p \|p\|^2`.

        Returns the sum and ``{"l1": ..., "l2": ...}`` (used by every training loss).
        """
        l1 = self.theta1 * enc.adjacency.abs().sum()
        l2 = self.parameter_penalty()
        return l1 + l2, {"l1": l1, "l2": l2}

    def parameter_penalty(self) -> Tensor:
        r"""The batch-independent part of the loss: :math:`\theta_2 \sum_p \|p\|^2`
        (halved under ``l2_halved``)."""
        l2 = self.theta2 * sum(p.pow(2).sum() for p in self.parameters())
        return l2 / 2 if self.l2_halved else l2

    def loss(
        self, users: Tensor, histories: Tensor, items: Tensor, labels: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        r"""Eq. 16-17, as sums:

        .. math::
            \sum_l \sum_{rows} \mathrm{BCE}(y^{(l)}, label) + \theta_1 \sum |A|
            + \theta_2 \sum_{p} \|p\|^2

        ``parts`` holds each term divided by the number of rows ``B * C``, as detached
        0-dim tensors (for logging; ``float()`` them when needed), and the BCE of each
        level (``bce_level0`` ..): a level whose BCE climbs towards ``log 2`` has stopped
        scoring.
        """
        enc = self.encode(users, histories)
        levels = self.train_scores(enc, items, None)  # [B, 1, C] under level_loss="pooled"
        targets = labels.to(levels.dtype).unsqueeze(1).expand_as(levels)
        # Element-wise, then summed: the same sum and gradient as reduction="sum" (which
        # is computed this way), and the per-level sums come from the same elements.
        elements = F.binary_cross_entropy_with_logits(levels, targets, reduction="none")
        bce = elements.sum()
        reg, parts = self.regularization(enc)
        l1, l2 = parts["l1"], parts["l2"]
        total = bce + reg
        per_level = elements.detach().sum((0, 2))
        # Detached device scalars: reading them (float()) is the caller's choice, so a
        # training step on a GPU never waits for the host. One pooled score
        # (level_loss="pooled") has no per-level terms to log.
        per_level_names = level_names("bce", levels.size(1)) if levels.size(1) > 1 else ()
        values = torch.cat([torch.stack([bce, l1, l2, total]).detach(),
                            per_level[: len(per_level_names)]])
        names = ("bce", "l1", "l2", "total", *per_level_names)
        return total, dict(zip(names, (values / labels.numel()).unbind(), strict=True))
