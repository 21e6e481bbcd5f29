"""User-aware graph convolution of MGNM (Eq. 2-4), as MessagePassing and dense layers.

Both layers compute ``H' = LeakyReLU(P H W)`` with ``P = I + D^-1/2 A D^-1/2`` and the
user-aware adjacency ``A`` of Eq. 1 (see :mod:`mgnm_pyg.nn.adjacency`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing

from .adjacency import (
    normalize_adjacency,
    user_aware_adjacency,
    user_aware_edge_weight,
    user_aware_gcn_norm,
)

__all__ = ["DenseUserAwareGraphConv", "UserAwareGraphConv"]

#: LeakyReLU slope: the paper does not give it; the authors' code uses tf.nn.leaky_relu (0.2).
DEFAULT_NEGATIVE_SLOPE = 0.2

#: Standard deviation of ``W`` at initialisation: the paper does not give it; the
#: authors' code draws its graph weight from N(0, 0.01^2).
WEIGHT_INIT_STD = 0.01


def reset_graph_weight(weight: Tensor) -> None:
    """Draw the graph weight ``W`` (or bias ``b``) from ``N(0, WEIGHT_INIT_STD^2)`` (the
    authors' code draws both so).

    Why not Glorot: with a Glorot-uniform ``W`` the deepest levels grow with depth and, on
    the real Toys data, their interests died (ReLU of Eq. 11 stuck at 0) after about 800
    steps. The small initialiser delays that (all levels still learning after 1,400
    steps) but does not always prevent it (benchmarks/RESULTS.md).
    """
    torch.nn.init.normal_(weight, 0.0, WEIGHT_INIT_STD)


def _bias_parameter(module: torch.nn.Module, channels: int, bias: bool) -> None:
    """Register ``module.bias`` (``[d]``, drawn like ``W``: the authors' ``b``) or None."""
    if bias:
        module.bias = torch.nn.Parameter(torch.empty(channels))
    else:
        module.register_parameter("bias", None)


class UserAwareGraphConv(MessagePassing):
    r"""User-aware graph convolution on a PyG batch of per-sequence graphs.

    .. math::
        \mathbf{H}' = \mathrm{LeakyReLU}\big((\mathbf{I} + \mathbf{D}^{-1/2}\mathbf{A}
        \mathbf{D}^{-1/2})\,\mathbf{H}\mathbf{W}\big)

    A sequence of ``n`` items is a graph of ``n`` nodes, fully connected with self loops
    (see :func:`~mgnm_pyg.nn.adjacency.fully_connected_edge_index`). The normalised edge
    weights can be passed in (MGNM builds them once from the level-0 embeddings and
    shares them across levels); otherwise they are computed from ``x`` and ``x_user``.

    Args:
        channels: feature size ``d`` (input and output).
        negative_slope: LeakyReLU slope (default 0.2, the authors' code).
        bias: add a bias ``b`` before the LeakyReLU (the authors' code; not in Eq. 2).
        identity: the ``I`` of ``P`` (Eq. 3); False propagates with the edge weights only
            (the authors' raw adjacency, ``norm_adj=False``).

    Shapes:
        - x: ``[N, d]``; edge_index: ``[2, E]``; edge_weight: ``[E]`` (normalised)
        - x_user: ``[G, d]``; batch: ``[N]``
        - output: ``[N, d]``
    """

    def __init__(self, channels: int, negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
                 bias: bool = False, identity: bool = True) -> None:
        super().__init__(aggr="sum")
        self.channels = channels
        self.negative_slope = negative_slope
        self.identity = identity
        self.weight = torch.nn.Parameter(torch.empty(channels, channels))
        _bias_parameter(self, channels, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``W`` (and ``b``) from :func:`reset_graph_weight`."""
        super().reset_parameters()
        reset_graph_weight(self.weight)
        if self.bias is not None:
            reset_graph_weight(self.bias)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        x_user: Tensor | None = None,
        batch: Tensor | None = None,
    ) -> Tensor:
        if edge_weight is None:
            if x_user is None or batch is None:
                raise ValueError("pass edge_weight, or x_user and batch to compute it")
            raw = user_aware_edge_weight(x, x_user, edge_index, batch)
            edge_weight = user_aware_gcn_norm(edge_index, raw, x.size(0))
        h = x @ self.weight
        out = self.propagate(edge_index, x=h, edge_weight=edge_weight)
        if self.identity:  # the identity of P is the node's own (transformed) features
            out = h + out
        if self.bias is not None:
            out = out + self.bias
        return F.leaky_relu(out, self.negative_slope)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, {self.channels})"


class DenseUserAwareGraphConv(torch.nn.Module):
    r"""Dense twin of :class:`UserAwareGraphConv` on a padded batch.

    .. math::
        \mathbf{H}' = \mathrm{LeakyReLU}(\mathbf{P}\,\mathbf{H}\mathbf{W})

    Padded rows of ``P`` are zero, so padded rows of the output stay exactly zero (with
    ``bias``, the caller masks them).

    Args:
        channels: feature size ``d``.
        negative_slope: LeakyReLU slope (default 0.2, the authors' code).
        bias: add a bias ``b`` before the LeakyReLU (the authors' code; not in Eq. 2).

    Shapes:
        - x: ``[B, m, d]``; mask: ``bool [B, m]``; prop: ``[B, m, m]`` (normalised ``P``)
        - x_user: ``[B, d]`` (only when ``prop`` is not given)
        - output: ``[B, m, d]``
    """

    def __init__(self, channels: int, negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
                 bias: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.negative_slope = negative_slope
        self.weight = torch.nn.Parameter(torch.empty(channels, channels))
        _bias_parameter(self, channels, bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``W`` (and ``b``) from :func:`reset_graph_weight`."""
        reset_graph_weight(self.weight)
        if self.bias is not None:
            reset_graph_weight(self.bias)

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        prop: Tensor | None = None,
        x_user: Tensor | None = None,
    ) -> Tensor:
        if prop is None:
            if x_user is None:
                raise ValueError("pass prop, or x_user to compute it")
            prop = normalize_adjacency(user_aware_adjacency(x, x_user, mask), mask)
        out = prop @ (x @ self.weight)
        if self.bias is not None:
            out = out + self.bias
        return F.leaky_relu(out, self.negative_slope)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, {self.channels})"
