"""MessagePassing and dense user-aware graph convolutions (Eq. 2-4)."""

from __future__ import annotations

import pytest
import torch

from mgnm_pyg.nn import (
    DenseUserAwareGraphConv,
    UserAwareGraphConv,
    fully_connected_edge_index,
    normalize_adjacency,
    user_aware_adjacency,
    user_aware_edge_weight,
    user_aware_gcn_norm,
)


def _padded_batch(lengths, d=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    m = max(lengths)
    x = torch.randn(len(lengths), m, d, generator=gen)
    mask = torch.arange(m).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return x * mask.unsqueeze(-1), torch.randn(len(lengths), d, generator=gen), mask


def _graph_of(x, mask):
    lengths = mask.sum(1)
    batch = torch.repeat_interleave(torch.arange(x.size(0)), lengths)
    return x[mask], fully_connected_edge_index(lengths), batch


def test_message_passing_and_dense_agree_on_random_batches():
    gen = torch.Generator().manual_seed(1)
    for trial in range(4):
        lengths = torch.randint(1, 51, (7,), generator=gen).tolist()
        lengths[0] = 1  # always include a single-item history
        lengths[1] = 50
        x, x_user, mask = _padded_batch(lengths, seed=trial)
        dense, mp = DenseUserAwareGraphConv(8), UserAwareGraphConv(8)
        mp.weight.data.copy_(dense.weight.data)
        nodes, edge_index, batch = _graph_of(x, mask)

        # One layer with each conv computing its own weights from (x, x_user).
        out_dense = dense(x, mask, x_user=x_user)
        out_mp = mp(nodes, edge_index, x_user=x_user, batch=batch)
        assert (out_dense[mask] - out_mp).abs().max() < 1e-5
        assert out_dense[~mask].abs().max() == 0  # padded rows stay exactly zero

        # Three layers sharing the level-0 adjacency, as in MGNM.
        prop = normalize_adjacency(user_aware_adjacency(x, x_user, mask), mask)
        norm = user_aware_gcn_norm(
            edge_index, user_aware_edge_weight(nodes, x_user, edge_index, batch), nodes.size(0)
        )
        h_dense, h_mp = x, nodes
        for _ in range(3):
            h_dense = dense(h_dense, mask, prop=prop)
            h_mp = mp(h_mp, edge_index, edge_weight=norm)
        assert (h_dense[mask] - h_mp).abs().max() < 1e-5


def test_dense_conv_matches_formula():
    x, x_user, mask = _padded_batch([3, 2], d=4)
    conv = DenseUserAwareGraphConv(4, negative_slope=0.2)
    out = conv(x, mask, x_user=x_user)
    for b in range(2):
        n = int(mask[b].sum())
        xb = x[b, :n]
        a = torch.sigmoid((xb * x_user[b]) @ xb.t())
        dinv = a.sum(1).rsqrt()
        p = torch.eye(n) + dinv[:, None] * a * dinv[None, :]
        expected = torch.nn.functional.leaky_relu(p @ xb @ conv.weight, 0.2)
        assert torch.allclose(out[b, :n], expected, atol=1e-6)


def test_conv_requires_weights_or_user():
    x, _, mask = _padded_batch([2])
    with pytest.raises(ValueError, match="x_user"):
        DenseUserAwareGraphConv(8)(x, mask)
