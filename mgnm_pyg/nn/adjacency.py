"""User-aware adaptive adjacency (Eq. 1) and its normalisation (Eq. 3).

Two equivalent forms are provided:

* **dense**: a padded batch ``x [B, m, d]`` with a validity mask ``[B, m]``;
* **edge list**: a PyG batch of per-sequence fully connected graphs (self loops
  included), as used by :class:`~mgnm_pyg.nn.conv.UserAwareGraphConv`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

__all__ = [
    "fully_connected_edge_index",
    "normalize_adjacency",
    "user_aware_adjacency",
    "user_aware_edge_weight",
    "user_aware_gcn_norm",
]


def user_aware_adjacency(x: Tensor, x_user: Tensor, mask: Tensor) -> Tensor:
    r"""Dense user-aware adjacency of Eq. 1.

    .. math::
        A_{ij} = \sigma\Big(\sum_k x_i[k]\, x_j[k]\, x_u[k]\Big)

    for every pair of valid positions (``i = j`` included); rows and columns of
    padded positions are 0.

    Args:
        x: item embeddings ``[B, m, d]``.
        x_user: user embeddings ``[B, d]``.
        mask: ``bool [B, m]``, True at valid positions.

    Shapes:
        - output: ``[B, m, m]``
    """
    logits = torch.matmul(x * x_user.unsqueeze(1), x.transpose(1, 2))
    pair_mask = mask.unsqueeze(2) & mask.unsqueeze(1)
    return torch.sigmoid(logits) * pair_mask.to(x.dtype)


def normalize_adjacency(adj: Tensor, mask: Tensor, eps: float = 1e-12) -> Tensor:
    r"""Propagation matrix of Eq. 3 from a dense adjacency.

    .. math::
        P = I + D^{-1/2} A D^{-1/2}, \qquad D = \mathrm{diag}\Big(\sum_j A_{ij}\Big)

    over valid nodes; padded rows and columns of ``P`` are 0, identity included.

    Args:
        adj: ``[B, m, m]`` adjacency with zeros at padded rows/columns.
        mask: ``bool [B, m]``.
        eps: floor on the degree before the inverse square root (padded rows have 0).

    Shapes:
        - output: ``[B, m, m]``
    """
    deg_inv_sqrt = adj.sum(-1).clamp_min(eps).rsqrt() * mask.to(adj.dtype)
    norm = deg_inv_sqrt.unsqueeze(2) * adj * deg_inv_sqrt.unsqueeze(1)
    return norm + torch.diag_embed(mask.to(adj.dtype))


def fully_connected_edge_index(sizes: Tensor) -> Tensor:
    r"""``edge_index`` of a batch of fully connected graphs with self loops.

    Graph ``g`` has ``sizes[g]`` nodes, numbered consecutively after the nodes of the
    graphs before it (PyG ``Batch`` order). Every ordered pair ``(i, j)`` of a graph is
    an edge, ``i = j`` included, so graph ``g`` has ``sizes[g]**2`` edges. Built
    without a Python loop over graphs.

    Args:
        sizes: ``int64 [G]`` number of nodes per graph (each >= 1).

    Shapes:
        - output: ``int64 [2, sum(sizes**2)]``; row 0 is the source, row 1 the target.
    """
    sizes = sizes.long()
    node_ptr = torch.cumsum(sizes, 0) - sizes
    n_edges = sizes * sizes
    edge_ptr = torch.cumsum(n_edges, 0) - n_edges
    graph = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), n_edges)
    local = torch.arange(graph.numel(), device=sizes.device) - edge_ptr[graph]
    n = sizes[graph]
    src = node_ptr[graph] + torch.div(local, n, rounding_mode="floor")
    dst = node_ptr[graph] + local % n
    return torch.stack([src, dst])


def user_aware_edge_weight(
    x: Tensor, x_user: Tensor, edge_index: Tensor, batch: Tensor
) -> Tensor:
    r"""Edge-list form of Eq. 1: ``w_ij = sigmoid(sum_k x_i[k] x_j[k] x_u[k])``.

    Args:
        x: node (item) embeddings ``[N, d]``.
        x_user: one user embedding per graph ``[G, d]``, broadcast to nodes by ``batch``.
        edge_index: ``[2, E]`` (edges never cross graphs).
        batch: ``int64 [N]`` graph of each node.

    Shapes:
        - output: ``[E]``
    """
    src, dst = edge_index
    return torch.sigmoid((x[src] * x_user[batch[src]] * x[dst]).sum(-1))


def user_aware_gcn_norm(
    edge_index: Tensor, edge_weight: Tensor, num_nodes: int, eps: float = 1e-12
) -> Tensor:
    r"""Edge-list form of the normalisation in Eq. 3 (``gcn_norm`` style).

    Returns the weights of :math:`D^{-1/2} A D^{-1/2}`, i.e.
    :math:`w_{ij} / \sqrt{d_i d_j}` with :math:`d_i = \sum_j w_{ij}`. The identity of
    :math:`P = I + D^{-1/2} A D^{-1/2}` is not added as edges:
    :class:`~mgnm_pyg.nn.conv.UserAwareGraphConv` adds the node's own features instead.

    Args:
        edge_index: ``[2, E]``, row 0 source ``j``, row 1 target ``i``.
        edge_weight: ``[E]`` adjacency weights ``A_ij``.
        num_nodes: number of nodes ``N``.
        eps: floor on the degree before the inverse square root.

    Shapes:
        - output: ``[E]``
    """
    src, dst = edge_index
    deg = scatter(edge_weight, dst, dim=0, dim_size=num_nodes, reduce="sum")
    deg_inv_sqrt = deg.clamp_min(eps).rsqrt()
    return deg_inv_sqrt[dst] * edge_weight * deg_inv_sqrt[src]
