r"""Normalisation of MGNM's graph levels before the interest extractor (not in the paper).

LeakyReLU gives the graph levels a common positive offset, which the propagation
matrix ``P = I + D^{-1/2} A D^{-1/2}`` (eigenvalue 2 on the constant direction) doubles
at every layer; the capsule squash then normalises each capsule by a norm that the
offset dominates (``benchmarks/RESULTS.md``, "Why MGNM stays at popularity", item 3).
The options here remove the offset or the growth, per sequence, on levels ``1..L``;
level 0 (the item embeddings) is left as it is.

- ``"none"``: the paper.
- ``"center"``: :math:`H \leftarrow H - \bar h`, the mean over the sequence's valid nodes.
- ``"rescale"``: :math:`H \leftarrow H \cdot \overline{\|x\|} / \overline{\|h\|}`, so
  the level's mean node norm equals level 0's.
- ``"center-rescale"``: both, in that order.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["LEVEL_NORMS", "normalize_levels"]

LEVEL_NORMS = ("none", "center", "rescale", "center-rescale")


def _mean_over_nodes(values: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    return (values * valid).sum(1, keepdim=True) / count


def normalize_levels(levels: list[Tensor], mask: Tensor, kind: str = "none",
                     eps: float = 1e-12) -> list[Tensor]:
    """Levels ``1..L`` normalised per sequence by ``kind`` (module doc); padded rows stay 0.

    Shapes:
        - levels: ``L+1`` tensors ``[B, m, d]``; mask: ``bool [B, m]``; output: as levels
    """
    if kind not in LEVEL_NORMS:
        raise ValueError(f"level_norm must be one of {LEVEL_NORMS}, got {kind!r}")
    if kind == "none" or len(levels) == 1:
        return levels
    valid = mask.unsqueeze(-1).to(levels[0].dtype)  # [B, m, 1]
    count = valid.sum(1, keepdim=True).clamp_min(1.0)  # [B, 1, 1]
    base_norm = _mean_over_nodes(levels[0].norm(dim=-1, keepdim=True), valid, count)
    out = [levels[0]]
    for h in levels[1:]:
        if kind in ("center", "center-rescale"):
            h = (h - _mean_over_nodes(h, valid, count)) * valid
        if kind in ("rescale", "center-rescale"):
            norm = _mean_over_nodes(torch.sqrt((h * h).sum(-1, keepdim=True) + eps), valid,
                                    count)
            h = h * (base_norm / norm)
        out.append(h)
    return out
