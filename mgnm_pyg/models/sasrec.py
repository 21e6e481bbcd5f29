r"""SASRec: self-attentive sequential recommendation.

Reference:
    Wang-Cheng Kang, Julian McAuley. "Self-Attentive Sequential Recommendation".
    ICDM 2018. Configured as in the S3Rec comparison (Kun Zhou et al., CIKM 2020).

Item plus learned position embeddings, LayerNorm and dropout, then ``n_blocks`` causal
self-attention blocks; the output :math:`F_m` at the last history position scores an
item by :math:`y(t) = F_m \cdot x_t` (the item table is shared by input and output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import SequenceEncoding, SequentialRecommender, dot_scores, last_valid

__all__ = ["CausalSelfAttentionBlock", "SASRec"]

#: Standard deviation of the normal initialisation of every weight (S3Rec's code).
INIT_STD = 0.02
#: LayerNorm epsilon (S3Rec's code).
NORM_EPS = 1e-12


class CausalSelfAttentionBlock(nn.Module):
    r"""Post-norm Transformer block with causal attention (S3Rec's layout).

    .. math::
        H' = \mathrm{LN}(H + \mathrm{Drop}(\mathrm{Attn}(H) W_o)),\qquad
        H'' = \mathrm{LN}(H' + \mathrm{Drop}(\mathrm{GELU}(H' W_1) W_2))

    Position ``j`` attends to positions ``<= j`` only, so with left-aligned histories the
    trailing padding never reaches a valid position.

    Args:
        dim: hidden size ``d`` (a multiple of ``n_heads``).
        n_heads: attention heads.
        dropout: dropout of the attention weights and of both residual branches.

    Shapes:
        - x: ``[B, m, d]``; output: ``[B, m, d]``
    """

    def __init__(self, dim: int, n_heads: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be a multiple of n_heads ({n_heads})")
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.attn_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.ffn_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, m, d = x.shape
        q, k, v = self.qkv(x).view(b, m, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = self.attn_norm(x + self.drop(self.out(att.transpose(1, 2).reshape(b, m, d))))
        return self.ffn_norm(x + self.drop(self.ffn(x)))


class SASRec(SequentialRecommender):
    r"""SASRec with S3Rec's settings as defaults.

    Args:
        n_users: number of users (unused; kept for the common constructor).
        n_items: number of items (ids ``1..n_items``; 0 is padding).
        dim: hidden size ``d`` (64).
        max_len: longest history, the number of position embeddings (50).
        n_blocks: self-attention blocks (2).
        n_heads: attention heads (1).
        dropout: dropout rate (0.5: on the Toys leave-one-out check, BCE-trained SASRec
            lands 13-14% below S3Rec's row with 0.5 and 16-20% below with 0.2, where its
            validation stalled while the training loss kept falling; RESULTS.md).

    Choices and departures:
        - Position ``max_len - n + j`` for the ``j``-th of ``n`` history items: S3Rec
          left-pads to ``max_len``, so the newest item always has the last position;
          this keeps that numbering on our left-aligned batches. A history longer than
          ``max_len`` puts its oldest items at position 0.
        - Weights ``N(0, 0.02^2)``, biases 0, LayerNorm eps 1e-12, GELU (S3Rec's code).
        - Training: one target per record, the item after the history (our records);
          S3Rec trains every position of a user's sequence in one pass. Both give each
          prefix's next item as a target, but S3Rec sees each sequence once per epoch
          (its prefixes numbered from the end of the whole training sequence, the
          oldest items cut beyond ``max_len``) while ours sees every prefix as its own
          record, ``~5.6x`` more gradient steps per epoch on Toys: epochs are not
          comparable, converged results should be.

    Shapes:
        - users: ``[B]``; histories: ``[B, m]`` left-aligned; items: ``[B, C]`` or ``[C]``
        - output of :meth:`score`: ``[B, 1, C]``
    """

    def __init__(self, n_users: int, n_items: int, dim: int = 64, max_len: int = 50,
                 n_blocks: int = 2, n_heads: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.config = dict(n_users=n_users, n_items=n_items, dim=dim, max_len=max_len,
                           n_blocks=n_blocks, n_heads=n_heads, dropout=dropout)
        self.max_len = max_len
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.input_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            CausalSelfAttentionBlock(dim, n_heads, dropout) for _ in range(n_blocks))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        self.item_embedding.weight.data[0].zero_()

    def positions(self, histories: Tensor) -> Tensor:
        """``[B, m]`` position ids, the newest item at ``max_len - 1`` (class docstring)."""
        lengths = (histories != 0).sum(1, keepdim=True)
        steps = torch.arange(histories.size(1), device=histories.device).unsqueeze(0)
        return (self.max_len - lengths + steps).clamp(0, self.max_len - 1)

    def encode(self, users: Tensor, histories: Tensor) -> SequenceEncoding:
        h = self.item_embedding(histories) + self.position_embedding(self.positions(histories))
        h = self.input_drop(self.input_norm(h))
        for block in self.blocks:
            h = block(h)
        return SequenceEncoding(last_valid(h, histories))

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        return dot_scores(interests, self.item_embedding(items))
