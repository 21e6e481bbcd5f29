"""Scoring for evaluation: items shared by every row in cache-sized blocks, and each
user's sorted positives (for GAUC).

Full ranking scores every row against every item. For MGNM a block of ``b`` rows and
``c`` items goes through ``[b, L+1, K, c]`` intermediates (the dot products, their
softmax over ``K``, the weighted sum), several times the size of the ``[b, c]`` result;
computed for a whole batch and a large item chunk at once, each of those passes streams
hundreds of megabytes through memory. In blocks that stay in the cache the same
arithmetic runs several times faster, and every score is computed exactly as before.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["ITEM_BLOCK", "ROW_BLOCK", "shared_item_scores", "sorted_positives"]

#: Rows and items per block of :func:`shared_item_scores` (for MGNM at d=16, K=4, L=3:
#: 32 x 256 x 16 dot products, 512 kB per intermediate, the L2 cache of one core here).
ROW_BLOCK, ITEM_BLOCK = 32, 256


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
