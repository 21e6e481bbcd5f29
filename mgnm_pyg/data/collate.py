"""Collate records into model inputs: dense padded tensors or a PyG ``Batch``.

Both take the records of one split and the indices of a batch (from
:class:`~mgnm_pyg.data.sampler.LengthBucketSampler`). ``candidates``, if given, is
aligned with ``records`` (one row per record, e.g. ``dataset.candidates["test"]``,
or the positive then the epoch's training negatives) and is indexed with ``index``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import Batch

from mgnm_pyg.data.dataset import PreparedDataset, Records


def dense_batch(
    dataset: PreparedDataset,
    records: Records,
    index: np.ndarray,
    max_len: int,
    candidates: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Dense tensors of the records at ``index``.

    Returns a dict with ``users``, ``histories`` (oldest first, left-aligned, padded with
    item 0, as wide as the batch's longest history, each at most ``max_len``),
    ``targets`` and, if ``candidates`` is given, ``candidates``.

    Shapes:
        index: ``[B]``; users ``[B]``, histories ``[B, m]``, targets ``[B]``,
        candidates ``[B, C]`` (all int64).
    """
    index = np.asarray(index, dtype=np.int64)
    users, positions = records.users[index], records.positions[index]
    out = {
        "users": torch.from_numpy(np.ascontiguousarray(users, dtype=np.int64)),
        "histories": torch.from_numpy(dataset.histories(users, positions, max_len)),
        "targets": torch.from_numpy(np.ascontiguousarray(records.targets[index], dtype=np.int64)),
    }
    if candidates is not None:
        rows = np.ascontiguousarray(candidates[index], dtype=np.int64)
        out["candidates"] = torch.from_numpy(rows)
    return out


def fully_connected_edges(sizes: torch.Tensor) -> torch.Tensor:
    """``edge_index`` of a disjoint union of complete graphs with self loops.

    Graph ``g`` has ``sizes[g]`` nodes, numbered consecutively; every ordered pair
    ``(i, j)`` of its nodes, ``i = j`` included, is an edge, so it has ``sizes[g]**2``
    edges. Edges are grouped by graph, then sorted by target, then by source.

    Shapes:
        sizes: ``[G]``; returns ``int64 [2, sum(sizes**2)]``.
    """
    sizes = sizes.to(torch.long)
    node_start = torch.cumsum(sizes, 0) - sizes
    n_edges = sizes * sizes
    graph = torch.repeat_interleave(torch.arange(sizes.numel()), n_edges)
    local = torch.arange(int(n_edges.sum())) - torch.repeat_interleave(
        torch.cumsum(n_edges, 0) - n_edges, n_edges)
    size = sizes[graph]
    target = local // size + node_start[graph]
    source = local % size + node_start[graph]
    return torch.stack([source, target])


def graph_batch(
    dataset: PreparedDataset,
    records: Records,
    index: np.ndarray,
    max_len: int,
    candidates: np.ndarray | None = None,
) -> Batch:
    """A ``torch_geometric.data.Batch`` with one fully connected graph per record.

    Graph ``b`` has one node per history item (oldest first, no padding), node feature
    ``x`` = the item id, and every ordered node pair as an edge (self loops included),
    for the MessagePassing form of the user-aware graph convolution. Graph-level
    attributes: ``user``, ``target`` and, if given, ``candidates``.

    Shapes:
        x ``[n]``, edge_index ``[2, sum(n_b**2)]``, batch ``[n]``, ptr ``[B + 1]``,
        user ``[B]``, target ``[B]``, candidates ``[B, C]``.
    """
    dense = dense_batch(dataset, records, index, max_len, candidates)
    histories = dense["histories"]
    mask = histories != 0
    sizes = mask.sum(1)
    n_graphs = histories.shape[0]
    batch_vec = torch.repeat_interleave(torch.arange(n_graphs), sizes)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes, 0)])
    data = Batch(
        x=histories[mask],
        edge_index=fully_connected_edges(sizes),
        user=dense["users"],
        target=dense["targets"],
        batch=batch_vec,
        ptr=ptr,
    )
    if candidates is not None:
        data.candidates = dense["candidates"]
    # Bookkeeping that Batch.from_data_list would have made, so that
    # ``to_data_list()`` and indexing work on this directly built batch.
    per_graph = torch.arange(n_graphs + 1)
    edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes * sizes, 0)])
    zeros = torch.zeros(n_graphs, dtype=torch.long)
    data._slice_dict = {"x": ptr, "edge_index": edge_ptr, "user": per_graph,
                        "target": per_graph}
    data._inc_dict = {"x": zeros, "edge_index": ptr[:-1], "user": zeros, "target": zeros}
    if candidates is not None:
        data._slice_dict["candidates"] = per_graph
        data._inc_dict["candidates"] = zeros
    data._num_graphs = n_graphs
    return data
