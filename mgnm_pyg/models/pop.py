r"""PopRec: recommend the items most frequent in the training split.

Reference:
    The popularity baseline of sequential recommendation, e.g. Kun Zhou et al.
    "S3-Rec: Self-Supervised Learning for Sequential Recommendation with Mutual
    Information Maximization". CIKM 2020 (PopRec in Table 2).

Every user gets the same scores: :math:`y(i) = n_i / \sum_j n_j`, with :math:`n_i` the
number of training interactions with item :math:`i`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import SequenceEncoding, SequentialRecommender

__all__ = ["Popularity"]


class Popularity(SequentialRecommender):
    r"""Item popularity over the training split; no trainable parameters.

    "Training" is counting: in train mode ``loss`` (and ``softmax_loss``) add the batch's
    positives to the counts and return a zero loss without gradient, so one pass of the
    trainer over the training records counts every training target. A record whose
    history has one item also counts that item (the first item of a sequence is never a
    target), so the counts cover every interaction of the training part of each sequence
    (all of it under leave-one-out and per-user splits).

    Scores are frequencies, not counts: a second epoch doubles every count and leaves the
    scores (exactly) unchanged, so the number of epochs does not matter.

    Args:
        n_users: number of users (unused; kept for the common constructor).
        n_items: number of items (ids ``1..n_items``; 0 is padding).

    Shapes:
        - users: ``[B]``; histories: ``[B, m]``; items: ``[B, C]`` or ``[C]``
        - output of :meth:`score`: ``[B, 1, C]``
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        self.config = dict(n_users=n_users, n_items=n_items)
        self.register_buffer("counts", torch.zeros(n_items + 1, dtype=torch.int64))

    def reset_parameters(self) -> None:
        self.counts.zero_()

    def frequencies(self) -> Tensor:
        """``[n_items + 1]`` share of each item among the counted interactions (0 for padding)."""
        total = self.counts.sum().clamp(min=1)
        # float64 division, so doubled counts give bit-identical frequencies
        return (self.counts.double() / total.double()).float()

    def encode(self, users: Tensor, histories: Tensor) -> SequenceEncoding:
        return SequenceEncoding(histories.new_zeros(histories.size(0), 0, dtype=torch.float32))

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        freq = self.frequencies()[items]
        if items.dim() == 1:
            return freq.expand(interests.size(0), 1, -1)
        return freq.unsqueeze(1)

    @torch.no_grad()
    def count(self, histories: Tensor, targets: Tensor) -> None:
        """Add the targets, and the single history item of length-1 histories, to the counts."""
        self.counts.index_add_(0, targets, torch.ones_like(targets))
        first = histories[(histories != 0).sum(1) == 1, 0]
        self.counts.index_add_(0, first, torch.ones_like(first))

    def loss(self, users: Tensor, histories: Tensor, items: Tensor,
             labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Counts the positives (in train mode); the loss is a zero without gradient."""
        if self.training:
            self.count(histories, items.gather(1, labels.argmax(1, keepdim=True)).squeeze(1))
        zero = labels.new_zeros(())
        return zero, {"total": zero}

    def softmax_loss(self, users: Tensor, histories: Tensor,
                     targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Counts the targets (in train mode); the loss is a zero without gradient."""
        if self.training:
            self.count(histories, targets)
        zero = targets.new_zeros((), dtype=torch.float32)
        return zero, {"total": zero}

    def sampled_softmax_loss(self, users: Tensor, histories: Tensor, targets: Tensor,
                             negatives: object) -> tuple[Tensor, dict[str, Tensor]]:
        """Counts the targets, as :meth:`softmax_loss` (the negatives are not read)."""
        return self.softmax_loss(users, histories, targets)
