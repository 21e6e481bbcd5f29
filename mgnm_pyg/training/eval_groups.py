"""Which evaluation records go together: groups of whole users (GAUC pools a user's
records), and windows of consecutive groups encoded at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mgnm_pyg.data.dataset import Records

__all__ = ["ENCODE_WINDOW", "encode_windows", "user_groups"]

#: Records encoded together before their groups are scored: enough for batches of one
#: history width to fill up, and only their interests are kept (about 8 MB for MGNM).
ENCODE_WINDOW = 8192


def user_groups(records: Records, max_len: int, batch_size: int) -> list[np.ndarray]:
    """Record indices grouped by whole users, each group at most ``batch_size`` records
    unless one user alone has more; groups ordered by their users' longest history.
    """
    n = len(records)
    if n == 0:
        return []
    lengths = np.minimum(records.positions, max_len)
    longest = np.zeros(int(records.users.max()) + 1, dtype=np.int64)
    np.maximum.at(longest, records.users, lengths)
    order = np.lexsort((lengths, records.users, longest[records.users]))
    users = records.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], n]
    groups: list[np.ndarray] = []
    group_start = 0
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if end - group_start > batch_size and start > group_start:
            groups.append(order[group_start:start])
            group_start = start
    groups.append(order[group_start:])
    return groups


def encode_windows(groups: list[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive groups, at least ``size`` records together (the last window may hold
    fewer)."""
    window: list[np.ndarray] = []
    count = 0
    for group in groups:
        window.append(group)
        count += group.size
        if count >= size:
            yield window
            window, count = [], 0
    if window:
        yield window
