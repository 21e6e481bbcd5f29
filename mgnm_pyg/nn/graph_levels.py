"""The graph levels ``H(0..L)`` of MGNM (Eq. 2-4) from the adjacency, dense or edge list.

``normalized`` propagates with ``P = I + D^-1/2 A D^-1/2`` (Eq. 3), otherwise with the raw
``A`` (the authors' code). ``stacked`` computes level ``l+1`` from level ``l`` (Eq. 2),
otherwise every level from level 0 (the authors' code). ``convs`` holds the layer of each
level (the same module repeated when ``W`` is shared).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .adjacency import (
    fully_connected_edge_index,
    normalize_adjacency,
    user_aware_edge_weight,
    user_aware_gcn_norm,
)

__all__ = ["dense_levels", "edge_list_levels"]


def dense_levels(convs: Sequence[nn.Module], x: Tensor, mask: Tensor, adj: Tensor,
                 normalized: bool = True, stacked: bool = True, mask_padding: bool = False
                 ) -> list[Tensor]:
    """Levels ``[B, m, d]`` with :class:`~mgnm_pyg.nn.conv.DenseUserAwareGraphConv` layers.

    ``mask_padding`` zeroes the padded rows of each level (a layer with a bias leaves
    ``LeakyReLU(b)`` there).
    """
    prop = normalize_adjacency(adj, mask) if normalized else adj
    levels = [x]
    node_mask = mask.unsqueeze(-1).to(x.dtype)
    for conv in convs:
        h = conv(levels[-1] if stacked else x, mask, prop=prop)
        levels.append(h * node_mask if mask_padding else h)
    return levels


def edge_list_levels(convs: Sequence[nn.Module], x: Tensor, x_user: Tensor, mask: Tensor,
                     normalized: bool = True, stacked: bool = True
                     ) -> tuple[list[Tensor], Tensor]:
    """Levels ``[B, m, d]`` and the dense adjacency ``[B, m, m]``, computed with
    :class:`~mgnm_pyg.nn.conv.UserAwareGraphConv` (MessagePassing) layers on per-sequence
    fully connected graphs (their ``identity`` must match ``normalized``)."""
    # Left-aligned rows: x[mask] lists the nodes graph by graph (PyG Batch order), and
    # the fully connected edges come in the row-major order of the dense pair mask.
    b, m, d = x.shape
    lengths = mask.sum(1)
    nodes = x[mask]
    batch = torch.repeat_interleave(torch.arange(b, device=x.device), lengths)
    edge_index = fully_connected_edge_index(lengths)
    weight = user_aware_edge_weight(nodes, x_user, edge_index, batch)
    norm = user_aware_gcn_norm(edge_index, weight, nodes.size(0)) if normalized else weight
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    adj = x.new_zeros(b, m, m).masked_scatter(pair_mask, weight)
    levels, h = [x], nodes
    node_mask = mask.unsqueeze(-1)
    for conv in convs:
        h = conv(h if stacked else nodes, edge_index, edge_weight=norm)
        levels.append(x.new_zeros(b, m, d).masked_scatter(node_mask, h))
    return levels, adj
