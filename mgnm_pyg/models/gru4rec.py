r"""GRU4Rec: session-based recommendation with a recurrent network.

Reference:
    Balázs Hidasi, Alexandros Karatzoglou, Linas Baltrunas, Domonkos Tikk.
    "Session-based Recommendations with Recurrent Neural Networks". ICLR 2016.

One GRU layer reads the history; its last hidden state :math:`h_m` is the user vector and
:math:`y(t) = h_m \cdot x_t`, with the item table shared by input and output.
"""

from __future__ import annotations

from torch import Tensor, nn

from .base import (
    SequenceEncoding,
    SequentialRecommender,
    dot_scores,
    last_valid,
    reset_item_embedding,
)

__all__ = ["GRU4Rec"]


class GRU4Rec(SequentialRecommender):
    r"""One-layer GRU over the history; the last valid hidden state scores the items.

    The GRU is causal, so trailing padding never reaches the last valid step.

    Args:
        n_users: number of users (unused; kept for the common constructor).
        n_items: number of items (ids ``1..n_items``; 0 is padding).
        dim: embedding and hidden size ``d`` (64 in the S3Rec comparison, 16 in MGNM's).

    Choices the papers leave open here: Glorot-uniform item table (as MGNM), PyTorch's
    GRU initialisation, no dropout, and the losses of this package (BCE with sampled
    negatives or full softmax) instead of GRU4Rec's TOP1/BPR.

    Shapes:
        - users: ``[B]``; histories: ``[B, m]``; items: ``[B, C]`` or ``[C]``
        - output of :meth:`score`: ``[B, 1, C]``
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64) -> None:
        super().__init__()
        self.config = dict(n_users=n_users, n_items=n_items, dim=dim)
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_item_embedding(self.item_embedding)
        self.gru.reset_parameters()

    def encode(self, users: Tensor, histories: Tensor) -> SequenceEncoding:
        states = self.gru(self.item_embedding(histories))[0]
        return SequenceEncoding(last_valid(states, histories))

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        return dot_scores(interests, self.item_embedding(items))
