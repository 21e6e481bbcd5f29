r"""ComiRec-DR: controllable multi-interest recommendation with dynamic routing.

Reference:
    Yukuo Cen, Jianwei Zhang, Xu Zou, Chang Zhou, Hongxia Yang, Jie Tang.
    "Controllable Multi-Interest Framework for Recommendation". KDD 2020.

Dynamic routing turns the history embeddings into ``K`` interests :math:`q_1..q_K`
(no graph, no BiLSTM). Training scores candidates with the one interest closest to the
target, :math:`k^* = \arg\max_k q_k \cdot x_t` (ComiRec's hard attention readout);
inference scores an item by its best interest, :math:`y(i) = \max_k q_k \cdot x_i` (the
merge of the per-interest retrievals).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.capsule import SequentialCapsuleNetwork
from .base import SequenceEncoding, SequentialRecommender, reset_item_embedding

__all__ = ["ComiRecDR"]


class ComiRecDR(SequentialRecommender):
    r"""ComiRec-DR built on MGNM's routing (``SequentialCapsuleNetwork(use_bilstm=False)``).

    Args:
        n_users: number of users (unused; kept for the common constructor).
        n_items: number of items (ids ``1..n_items``; 0 is padding).
        dim: embedding size ``d``.
        n_interests: number of interests ``K`` (4).
        routing_iters: dynamic-routing iterations (3, ComiRec's default).
        interest_activation: ``"relu"`` (MGNM's Eq. 11, ``q_k = ReLU(o_k W'_k)``) or
            ``"none"`` (linear ``W'_k``), or ``"identity"`` (``q_k = o_k``, as ComiRec's
            code, which has no such layer).
        max_len: number of per-position capsule maps (the longest history).
        capsule_maps: ``"auto"``/``"per-position"`` (the default, as ComiRec-DR's own code:
            one ``[K*d, d]`` map per position, drawn ``N(0, 1)``) or ``"shared"`` (one
            ``W_k`` for all positions, as MGNM's SPEC). **The default changed**: before
            issue 19 this model always shared its maps, so its earlier results are
            ``capsule_maps="shared"``. Positions count back from the most recent item
            (:func:`~mgnm_pyg.nn.capsule.per_position_inputs`); ComiRec's code pads short
            histories at the end, so there they count from the oldest item.

    Departures from ComiRec's code: interests pass MGNM's ``act(o_k W'_k)`` (Eq. 11)
    unless ``interest_activation="identity"``; routing logits start at zero as in
    ComiRec-DR.
    ComiRec trains with a sampled softmax; here it trains with any of the package's
    losses (BCE with sampled negatives as the paper trains the baselines, the full
    softmax, or ``loss="sampled-softmax"`` over negatives shared by the batch).

    Shapes:
        - users: ``[B]``; histories: ``[B, m]``; items: ``[B, C]`` or ``[C]``
        - interests: ``[B, K, d]``; output of :meth:`score`: ``[B, 1, C]``
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 16, n_interests: int = 4,
                 routing_iters: int = 3, interest_activation: str = "relu",
                 max_len: int = 100, capsule_maps: str = "auto") -> None:
        super().__init__()
        capsule_maps = "per-position" if capsule_maps == "auto" else capsule_maps
        self.config = dict(n_users=n_users, n_items=n_items, dim=dim,
                           n_interests=n_interests, routing_iters=routing_iters,
                           interest_activation=interest_activation, max_len=max_len,
                           capsule_maps=capsule_maps)
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.capsules = SequentialCapsuleNetwork(dim, n_interests, routing_iters,
                                                 use_bilstm=False,
                                                 interest_activation=interest_activation,
                                                 capsule_maps=capsule_maps, max_len=max_len)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_item_embedding(self.item_embedding)
        self.capsules.reset_parameters()

    def encode(self, users: Tensor, histories: Tensor) -> SequenceEncoding:
        return SequenceEncoding(self.capsules(self.item_embedding(histories), histories != 0))

    def _interest_scores(self, interests: Tensor, items: Tensor) -> Tensor:
        """``[B, K, C]`` dot products of every interest with every candidate."""
        x = self.item_embedding(items)
        return interests @ (x.t() if x.dim() == 2 else x.transpose(1, 2))

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        """Inference: each item scored by its best interest, ``[B, 1, C]``."""
        return self._interest_scores(interests, items).max(1, keepdim=True).values

    def train_scores(self, encoding: SequenceEncoding, items: Tensor, targets: Tensor) -> Tensor:
        """Training: every candidate scored by the interest closest to the target."""
        interests = encoding.interests
        target_scores = (interests @ self.item_embedding(targets).unsqueeze(-1)).squeeze(-1)
        chosen = target_scores.argmax(1)  # [B]; argmax, so no gradient flows through the choice
        user = interests[torch.arange(interests.size(0), device=interests.device), chosen]
        x = self.item_embedding(items)
        if x.dim() == 2:
            return (user @ x.t()).unsqueeze(1)
        return (x @ user.unsqueeze(-1)).transpose(1, 2)
