"""Encoding and scoring for evaluation: records encoded in batches of one history width,
items shared by every row scored in cache-sized blocks, and each user's sorted positives
(for GAUC).

Evaluation groups records by whole users (for GAUC), and a user's records have several
history lengths, so a group's batch is padded. Encoding is independent of the scoring
order, so :func:`encode_by_width` encodes a window of records in batches of one width
each (no padding: the BiLSTM runs as one call over unpadded sequences on the CPU) and
hands back their interests in the window's order.

Full ranking scores every row against every item. For MGNM a block of ``b`` rows and
``c`` items goes through ``[b, L+1, K, c]`` intermediates (the dot products, their
softmax over ``K``, the weighted sum), several times the size of the ``[b, c]`` result;
computed for a whole batch and a large item chunk at once, each of those passes streams
hundreds of megabytes through memory. In blocks that stay in the cache the same
arithmetic runs several times faster, and every score is computed exactly as before.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["COMPARE_POSITIVES", "ITEM_BLOCK", "ROW_BLOCK", "encode_by_width",
           "pair_counts", "shared_item_scores", "sorted_positives", "width_batches"]

#: Rows and items per block of :func:`shared_item_scores` (for MGNM at d=16, K=4, L=3:
#: 32 x 256 x 16 dot products, 512 kB per intermediate, the L2 cache of one core here).
ROW_BLOCK, ITEM_BLOCK = 32, 256
#: Up to this many positives per row, :func:`pair_counts` compares column by column; a
#: compare-and-add pass over the scores is several times cheaper than a ``searchsorted``
#: lookup, which wins only for longer rows (measured here at 8 to 14 positives).
COMPARE_POSITIVES = 8


def width_batches(widths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Positions ``0..W-1`` of ``widths`` in batches of one width each, at most
    ``batch_size`` long, widths ascending; every position in exactly one batch."""
    order = np.argsort(widths, kind="stable")
    sorted_widths = widths[order]
    starts = np.flatnonzero(np.r_[True, sorted_widths[1:] != sorted_widths[:-1]])
    ends = np.r_[starts[1:], widths.size]
    return [order[lo : min(lo + batch_size, end)]
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
            for lo in range(start, end, batch_size)]


def encode_by_width(model, dataset, records, index: np.ndarray, max_len: int,
                    batch_size: int, device: torch.device) -> Tensor:
    """``model.encode(...).interests`` of the records ``index``, in that order, encoded
    in batches of one history width each.

    Shapes:
        - index: ``[W]``; output: ``[W, ...]`` (the model's interests per record)
    """
    users = records.users[index]
    positions = records.positions[index]
    parts, rows = [], []
    for batch in width_batches(np.minimum(positions, max_len), batch_size):
        hist = dataset.histories(users[batch], positions[batch], max_len)
        enc = model.encode(torch.from_numpy(users[batch]).to(device),
                           torch.from_numpy(hist).to(device))
        parts.append(enc.interests)
        rows.append(batch)
    interests = torch.cat(parts)
    back = np.empty(index.size, dtype=np.int64)
    back[np.concatenate(rows)] = np.arange(index.size)
    return interests[torch.from_numpy(back).to(interests.device)]


def shared_item_scores(model, interests: Tensor, items: Tensor, row_block: int = ROW_BLOCK,
                       item_block: int = ITEM_BLOCK) -> Tensor:
    """``model.pool_levels(model.score(interests, items))`` for items ``[C]`` shared by
    every row, computed block by block on the CPU.

    Every model's ``interests`` has the rows first, and a row's scores depend on that
    row only, so the blocks give the scores of the whole product.

    Shapes:
        - interests: ``[B, ...]``; items: ``[C]``; output: ``[B, C]``
    """
    b, c = interests.size(0), items.numel()
    # The blocks are for a CPU core's cache; on a GPU they would only multiply the
    # kernel launches, so the whole product runs at once there.
    if interests.device.type != "cpu" or (b <= row_block and c <= item_block):
        return model.pool_levels(model.score(interests, items))
    interests = interests.contiguous()  # once, not once per block
    out = None
    for lo in range(0, b, row_block):
        rows = interests[lo : lo + row_block]
        for start in range(0, c, item_block):
            block = model.pool_levels(model.score(rows, items[start : start + item_block]))
            if out is None:
                out = block.new_empty(b, c)
            out[lo : lo + row_block, start : start + item_block] = block
    return out


def sorted_positives(users: Tensor, pos: Tensor) -> tuple[Tensor, Tensor]:
    """For each row, the sorted positive scores of its user among ``users`` (+inf padded)
    and the user's number of positives.

    Shapes: users, pos ``[G]`` -> ``[G, R_max]``, ``[G]``.
    """
    _, inv = torch.unique(users, return_inverse=True)
    order = torch.argsort(pos, stable=True)
    order = order[torch.argsort(inv[order], stable=True)]
    counts = torch.bincount(inv)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(users.numel(), device=users.device) - starts[inv[order]]
    table = pos.new_full((counts.numel(), int(counts.max())), float("inf"))
    table[inv[order], slot] = pos[order]
    return table[inv].contiguous(), counts[inv]


def pair_counts(table: Tensor, n_pos: Tensor, scores: Tensor) -> Tensor:
    """``#(p <= s) + #(p < s)`` over each row's positives ``p`` for every score ``s``.

    ``table`` holds each row's positives sorted, then ``+inf`` padding (as from
    :func:`sorted_positives`); only the first ``n_pos`` count, also when ``s`` is
    ``+inf``.

    Shapes:
        - table: ``[B, R]``; n_pos: ``[B]``; scores: ``[B, C]``; output: ``int32 [B, C]``
    """
    most = n_pos.unsqueeze(1).to(torch.int32)
    if table.size(1) > COMPARE_POSITIVES:
        counts = torch.searchsorted(table, scores, right=True, out_int32=True).clamp_(max=most)
        return counts.add_(torch.searchsorted(table, scores, right=False, out_int32=True))
    at_most = torch.zeros(scores.shape, dtype=torch.int32, device=scores.device)
    below = torch.zeros_like(at_most)
    for r in range(table.size(1)):
        column = table[:, r : r + 1]
        at_most += scores >= column
        below += scores > column
    # the +inf padding is <= s only when s is +inf; clamp drops it, as searchsorted's
    return at_most.clamp_(max=most).add_(below)
