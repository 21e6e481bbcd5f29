"""Target-attention readout of MGNM (Eq. 12-14)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["target_attention"]


def target_attention(interests: Tensor, items: Tensor) -> Tensor:
    r"""Score candidates against K interests with target attention.

    .. math::
        s_k = q_k \cdot x_t,\qquad a = \mathrm{softmax}_k(s),\qquad
        y = \Big(\sum_k a_k q_k\Big) \cdot x_t = \sum_k a_k s_k

    ``y`` depends on the candidate only through ``S = Q x_t``, so all candidates are
    scored with one matrix product and the sequence is never re-encoded per candidate.

    Args:
        interests: ``[B, *, K, d]`` (e.g. ``[B, L+1, K, d]``, one set per level).
        items: candidate embeddings, ``[B, C, d]`` (per row) or ``[C, d]`` (shared by all
            rows, e.g. full ranking over every item).

    Shapes:
        - output: ``[B, *, C]``
    """
    if items.dim() == 2:
        # one matrix product over every interest of every row: [B, *, K, C]
        flat = interests.reshape(-1, interests.size(-1)) @ items.t()
        scores = flat.view(*interests.shape[:-1], items.size(0))
    else:
        lead = interests.shape[:-2]
        flat = interests.reshape(lead[0], -1, interests.size(-1))  # [B, *K, d]
        scores = (flat @ items.transpose(1, 2)).view(*lead, interests.size(-2), items.size(1))
    weights = torch.softmax(scores, dim=-2)
    return (weights * scores).sum(-2)
