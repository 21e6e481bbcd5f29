"""dense_batch and graph_batch against plain-Python histories."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.utils import to_dense_batch

from mgnm_pyg.data.collate import dense_batch, fully_connected_edges, graph_batch
from mgnm_pyg.data.synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset("tiny")


def _python_history(ds, user, position, max_len):
    seq = ds.sequence(int(user)).tolist()
    return seq[max(0, position - max_len) : position]


@pytest.mark.parametrize("max_len", [3, 100])
def test_dense_rows_equal_python_histories(tiny, max_len):
    rec = tiny.records["test"]
    index = np.array([5, 0, 17, 3, 42])
    out = dense_batch(tiny, rec, index, max_len, candidates=tiny.candidates["test"])
    hist = [_python_history(tiny, rec.users[i], int(rec.positions[i]), max_len) for i in index]
    width = max(len(h) for h in hist)
    assert out["histories"].shape == (5, width) and out["histories"].dtype == torch.long
    for row, h in zip(out["histories"].tolist(), hist, strict=True):
        assert row == h + [0] * (width - len(h))
    assert out["users"].tolist() == rec.users[index].tolist()
    assert out["targets"].tolist() == rec.targets[index].tolist()
    assert torch.equal(out["candidates"], torch.from_numpy(tiny.candidates["test"][index]))


def test_fully_connected_edges_small_case():
    edges = fully_connected_edges(torch.tensor([2, 1]))
    pairs = set(map(tuple, edges.t().tolist()))
    assert pairs == {(0, 0), (1, 0), (0, 1), (1, 1), (2, 2)}


def test_graph_batch_matches_dense(tiny):
    rec = tiny.records["train"]
    index = np.arange(30, 60)
    dense = dense_batch(tiny, rec, index, 8)
    graph = graph_batch(tiny, rec, index, 8)
    assert graph.num_graphs == 30
    x, mask = to_dense_batch(graph.x, graph.batch)
    assert torch.equal(x, dense["histories"]) and torch.equal(mask, dense["histories"] != 0)
    assert torch.equal(graph.user, dense["users"]) and torch.equal(graph.target, dense["targets"])
    sizes = mask.sum(1)
    src, dst = graph.edge_index
    assert torch.equal(graph.batch[src], graph.batch[dst])  # no edge between sequences
    per_graph = torch.bincount(graph.batch[src], minlength=30)
    assert torch.equal(per_graph, sizes * sizes)
    assert len(set(map(tuple, graph.edge_index.t().tolist()))) == graph.edge_index.shape[1]
    first = graph.to_data_list()[1]
    assert torch.equal(first.x, dense["histories"][1][: sizes[1]])
    assert first.edge_index.max() == sizes[1] - 1
