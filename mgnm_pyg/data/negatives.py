"""Negative items: persisted evaluation candidates and per-epoch training negatives.

Both draws are uniform over the items a user never interacted with (the user's whole
sequence, so neither a history item nor the target can come up) and both are
vectorised: draw every entry at once, look each (user, item) pair up in a sorted
array of interaction keys ``user * (n_items + 1) + item``, and redraw only the
entries that were rejected.
"""

from __future__ import annotations

import numpy as np

from mgnm_pyg.errors import MGNMError

# After this many rejection rounds the rows still unfinished (users who interacted
# with most of the catalogue) are drawn exactly, one row at a time, from their allowed set.
_MAX_ROUNDS = 20


def interaction_keys(offsets: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted unique ``int64`` keys ``user * (n_items + 1) + item`` of every interaction."""
    counts = np.diff(offsets)
    users = np.repeat(np.arange(counts.shape[0], dtype=np.int64), counts)
    keys = np.sort(users * (n_items + 1) + items.astype(np.int64))
    # Sort-based unique: np.unique's hash path is several times slower on this data.
    keep = np.ones(keys.shape[0], dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _is_member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``keys`` (any shape) that occur in ``sorted_keys``."""
    if sorted_keys.shape[0] == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.shape[0] - 1)
    return sorted_keys[pos] == keys


def _allowed_items(sorted_keys: np.ndarray, user: int, n_items: int) -> np.ndarray:
    stride = n_items + 1
    lo, hi = np.searchsorted(sorted_keys, [user * stride, (user + 1) * stride])
    seen = sorted_keys[lo:hi] - user * stride
    return np.setdiff1d(np.arange(1, n_items + 1, dtype=np.int64), seen, assume_unique=True)


def sample_negatives(
    sorted_keys: np.ndarray,
    users: np.ndarray,
    n_items: int,
    n: int,
    rng: np.random.Generator,
    distinct: bool,
) -> np.ndarray:
    """Draw ``n`` items per row, uniform over items that ``users[r]`` never interacted with.

    Args:
        sorted_keys: output of :func:`interaction_keys`.
        users: ``int64 [R]`` the user of each row.
        n_items: number of real items (ids ``1..n_items``).
        n: negatives per row.
        rng: the random generator (the draw is a pure function of its state).
        distinct: if True, a row holds ``n`` different items (sampling without
            replacement) whenever the user has at least ``n`` allowed items; a user with
            fewer allowed items gets a draw with replacement from them.

    Each row comes back in ascending item order (the order carries no meaning).

    Raises:
        MGNMError: a user has interacted with every item, so no negative exists.

    Shapes:
        returns ``int64 [R, n]``.
    """
    users = np.asarray(users, dtype=np.int64)
    rows = users.shape[0]
    if rows == 0 or n == 0:
        return np.zeros((rows, n), dtype=np.int64)
    stride = n_items + 1
    out = rng.integers(1, n_items + 1, size=(rows, n), dtype=np.int64)
    todo, block = np.arange(rows), out
    for attempt in range(_MAX_ROUNDS + 1):
        # Sorting a row puts its duplicates side by side.
        block.sort(axis=1)
        reject = _is_member(sorted_keys, users[todo, None] * stride + block)
        if distinct:
            reject[:, 1:] |= block[:, 1:] == block[:, :-1]
        if attempt:
            out[todo] = block
        unfinished = reject.any(axis=1)
        todo, block, reject = todo[unfinished], block[unfinished], reject[unfinished]
        if todo.size == 0 or attempt == _MAX_ROUNDS:
            break
        # Redraw only the rejected entries; the accepted ones stay.
        block[reject] = rng.integers(1, n_items + 1, size=int(reject.sum()), dtype=np.int64)
    for row in todo:
        allowed = _allowed_items(sorted_keys, int(users[row]), n_items)
        if allowed.size == 0:
            raise MGNMError(
                f"user index {int(users[row])} has interacted with all {n_items} items, "
                "so no negative item can be drawn for it; filter such users out first"
            )
        replace = not distinct or allowed.size < n
        out[row] = rng.choice(allowed, size=n, replace=replace)
    return out


def sample_evaluation_candidates(
    offsets: np.ndarray,
    items: np.ndarray,
    n_items: int,
    users: np.ndarray,
    n: int,
    rng: np.random.Generator,
    sorted_keys: np.ndarray | None = None,
) -> np.ndarray:
    """The persisted evaluation negatives: ``n`` distinct items per record.

    Uniform over the items the record's user never interacted with (whole sequence).
    Distinct within a row; a user with fewer than ``n`` allowed items gets a draw with
    replacement from them (so such a row repeats items).

    ``sorted_keys`` (:func:`interaction_keys` of the same data) saves recomputing them.

    Shapes:
        offsets: ``[n_users + 1]``, items: ``[n_interactions]``, users: ``[R]``;
        returns ``int64 [R, n]``.
    """
    keys = interaction_keys(offsets, items, n_items) if sorted_keys is None else sorted_keys
    return sample_negatives(keys, users, n_items, n, rng, distinct=True)


def sample_training_negatives(
    dataset, records, n_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """Training negatives of one epoch, drawn afresh by the caller every epoch.

    Uniform and i.i.d. (with replacement; SPEC asks only for uniform draws made afresh
    each epoch, and duplicates among 5 of thousands of items are rare), never an item of
    the record's user's sequence, hence never a history item or the target. Pass
    ``np.random.default_rng([seed, epoch])`` for a draw that depends only on
    (seed, epoch).

    Args:
        dataset: the :class:`~mgnm_pyg.data.dataset.PreparedDataset`.
        records: the :class:`~mgnm_pyg.data.dataset.Records` to draw for.
        n_negatives: negatives per record.
        rng: the random generator.

    Shapes:
        returns ``int64 [R, n_negatives]``.
    """
    return sample_negatives(
        dataset.interaction_keys, records.users, dataset.n_items, n_negatives, rng, distinct=False
    )
