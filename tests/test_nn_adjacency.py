"""User-aware adjacency (Eq. 1), its normalisation (Eq. 3) and the edge-list twins."""

from __future__ import annotations

import math

import torch
from torch_geometric.utils import to_dense_adj

from mgnm_pyg.nn import (
    fully_connected_edge_index,
    normalize_adjacency,
    user_aware_adjacency,
    user_aware_edge_weight,
    user_aware_gcn_norm,
)


def _example():
    # Two sequences: 3 valid items, and 2 valid items + 1 padded slot (garbage values).
    x = torch.tensor(
        [
            [[0.5, -1.0], [2.0, 0.3], [-0.7, 1.5]],
            [[1.0, 1.0], [-2.0, 0.5], [9.0, 9.0]],
        ]
    )
    x_user = torch.tensor([[1.0, 2.0], [-0.5, 0.25]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    return x, x_user, mask


def test_dense_adjacency_matches_elementwise_formula():
    x, x_user, mask = _example()
    adj = user_aware_adjacency(x, x_user, mask)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                if mask[b, i] and mask[b, j]:
                    s = sum(x[b, i, k] * x[b, j, k] * x_user[b, k] for k in range(2))
                    expected = 1.0 / (1.0 + math.exp(-float(s)))
                else:
                    expected = 0.0
                assert abs(adj[b, i, j].item() - expected) < 1e-6


def test_normalized_adjacency_equals_plain_loop():
    x, x_user, mask = _example()
    adj = user_aware_adjacency(x, x_user, mask)
    prop = normalize_adjacency(adj, mask)
    for b in range(2):
        valid = [i for i in range(3) if mask[b, i]]
        deg = {i: sum(adj[b, i, j].item() for j in valid) for i in valid}
        for i in range(3):
            for j in range(3):
                if i in valid and j in valid:
                    expected = (i == j) + adj[b, i, j].item() / math.sqrt(deg[i] * deg[j])
                else:
                    expected = 0.0  # padded rows and columns, identity included
                assert abs(prop[b, i, j].item() - expected) < 1e-6, (b, i, j)


def test_normalized_adjacency_hand_values():
    # A = [[1, 1], [1, 1]]: degrees 2, so P = I + A / 2.
    adj = torch.ones(1, 2, 2)
    prop = normalize_adjacency(adj, torch.ones(1, 2, dtype=torch.bool))
    assert torch.allclose(prop, torch.tensor([[[1.5, 0.5], [0.5, 1.5]]]))


def test_fully_connected_edge_index_matches_loop():
    sizes = torch.tensor([1, 3, 2])
    expected, offset = [], 0
    for n in sizes.tolist():
        expected += [(offset + i, offset + j) for i in range(n) for j in range(n)]
        offset += n
    edge_index = fully_connected_edge_index(sizes)
    assert edge_index.t().tolist() == [list(e) for e in expected]


def test_edge_list_twins_equal_dense_forms():
    x, x_user, mask = _example()
    lengths = mask.sum(1)
    nodes = x[mask]
    batch = torch.repeat_interleave(torch.arange(2), lengths)
    edge_index = fully_connected_edge_index(lengths)
    weight = user_aware_edge_weight(nodes, x_user, edge_index, batch)
    norm = user_aware_gcn_norm(edge_index, weight, nodes.size(0))

    adj = user_aware_adjacency(x, x_user, mask)
    prop = normalize_adjacency(adj, mask)
    dense_w = to_dense_adj(edge_index, batch, weight, max_num_nodes=3)
    dense_p = to_dense_adj(edge_index, batch, norm, max_num_nodes=3) + torch.diag_embed(
        mask.float()
    )
    assert torch.allclose(dense_w, adj, atol=1e-6)
    assert torch.allclose(dense_p, prop, atol=1e-6)
