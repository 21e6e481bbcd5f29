"""The interface every recommender of this package shares with MGNM.

The trainer, the evaluator and ``recommend`` use a model only through

- ``encode(users, histories)``: an object with an ``interests`` field, the user
  representation the scorer reads (encoded once per sequence, whatever the candidates);
- ``score(interests, items)``: level scores ``[B, L, C]`` (logits) of items ``[B, C]``
  or ``[C]`` (shared by all rows); the baselines have one level, ``L = 1``;
- ``pool_levels(level_scores)``: ``[B, L, C] -> [B, C]``;
- ``train_scores(encoding, items, targets)``: the level scores the losses read (by
  default ``score``; ComiRec-DR picks the interest closest to the target);
- ``regularization(encoding)``: the model's penalty terms (none by default; MGNM: Eq. 17);
- ``predict``, ``loss`` (BCE, sampled negatives), ``softmax_loss``,
  ``sampled_softmax_loss`` and ``config``.

So no caller special-cases a model, and no loss probes a model for what it has.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .loss import SharedNegatives, bce_loss, full_softmax_loss, sampled_softmax_loss

__all__ = [
    "SequenceEncoding",
    "SequentialRecommender",
    "dot_scores",
    "last_valid",
    "reset_item_embedding",
]


def reset_item_embedding(table: nn.Embedding, scale: float = 1.0) -> None:
    """Glorot-uniform item table (the TF1 default of the authors' code), times ``scale``,
    with the padding row 0 set to zero."""
    nn.init.xavier_uniform_(table.weight)
    with torch.no_grad():
        table.weight.mul_(scale)
        table.weight[0].zero_()


class SequenceEncoding(NamedTuple):
    """Output of a baseline's ``encode``."""

    interests: Tensor  #: ``[B, d]`` (one user vector) or ``[B, K, d]`` (K interests)


def dot_scores(user: Tensor, items: Tensor) -> Tensor:
    """Inner products of user vectors with candidate embeddings, as one level.

    Shapes:
        - user: ``[B, d]``; items: ``[B, C, d]`` or ``[C, d]``; output: ``[B, 1, C]``
    """
    if items.dim() == 2:
        return (user @ items.t()).unsqueeze(1)
    return (items @ user.unsqueeze(-1)).transpose(1, 2)


def last_valid(states: Tensor, histories: Tensor) -> Tensor:
    """The state at each sequence's last valid (non-padding) position.

    Shapes:
        - states: ``[B, m, d]``; histories: ``[B, m]`` left-aligned; output: ``[B, d]``
    """
    last = (histories != 0).sum(1) - 1
    return states[torch.arange(last.numel(), device=last.device), last]


class SequentialRecommender(nn.Module):
    """Base of every model: the losses, no regulariser, and level pooling by max.

    Subclasses set ``self.config`` (their constructor arguments) and define ``encode``
    and ``score``; a model whose training scores need the target (ComiRec's interest
    selection) overrides ``train_scores``, one with penalty terms ``regularization``.
    """

    config: dict

    def encode(self, users: Tensor, histories: Tensor) -> SequenceEncoding:
        raise NotImplementedError

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        raise NotImplementedError

    def train_scores(self, encoding: SequenceEncoding, items: Tensor, targets: Tensor) -> Tensor:
        """Level scores used by the losses; ``targets`` ``[B]`` are the positives."""
        return self.score(encoding.interests, items)

    def regularization(self, encoding) -> tuple[Tensor, dict[str, Tensor]]:
        """The penalty added to every training loss and its named parts: none here."""
        return encoding.interests.new_zeros(()), {}

    def parameter_penalty(self) -> Tensor | float:
        """The batch-independent part of :meth:`regularization` (a term on the weights
        only, added once per step whatever the batch): none here."""
        return 0.0

    def pool_levels(self, level_scores: Tensor) -> Tensor:
        """``[B, L, C] -> [B, C]``: max over levels (a no-op for one level)."""
        # amax: the same values as max(1).values, without computing the argmax
        return level_scores.amax(1)

    def predict(self, users: Tensor, histories: Tensor, items: Tensor) -> Tensor:
        """Scores ``[B, C]`` of items ``[B, C]`` (or ``[C]``, shared) for each history."""
        return self.pool_levels(self.score(self.encode(users, histories).interests, items))

    def loss(self, users: Tensor, histories: Tensor, items: Tensor,
             labels: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """BCE-with-logits summed over rows (as Eq. 16); ``parts`` per row.

        The positive of each row is its first column labelled 1 (column 0 in training).
        """
        enc = self.encode(users, histories)
        targets = items.gather(1, labels.argmax(1, keepdim=True)).squeeze(1)
        total = bce_loss(self.train_scores(enc, items, targets), labels)
        value = total.detach() / labels.numel()  # a device scalar: no host sync per step
        return total, {"bce": value, "total": value}

    def softmax_loss(self, users: Tensor, histories: Tensor,
                     targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of each target among all items (``models/loss.py``)."""
        return full_softmax_loss(self, users, histories, targets)

    def sampled_softmax_loss(self, users: Tensor, histories: Tensor, targets: Tensor,
                             negatives: SharedNegatives) -> tuple[Tensor, dict[str, Tensor]]:
        """Cross-entropy of each target among the batch's shared negatives (``models/loss.py``)."""
        return sampled_softmax_loss(self, users, histories, targets, negatives)
