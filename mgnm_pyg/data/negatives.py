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
    return np.unique(users * (n_items + 1) + items.astype(np.int64))


def _is_member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, max(sorted_keys.shape[0] - 1, 0))
    if sorted_keys.shape[0] == 0:
        return np.zeros(keys.shape, dtype=bool)
    return sorted_keys[pos] == keys


def _allowed_items(sorted_keys: np.ndarray, user: int, n_items: int) -> np.ndarray:
    stride = n_items + 1
    lo, hi = np.searchsorted(sorted_keys, [user * stride, (user + 1) * stride])
    seen = sorted_keys[lo:hi] - user * stride
    return np.setdiff1d(np.arange(1, n_items + 1, dtype=np.int64), seen, assume_unique=True)


def _duplicate_mask(draw: np.ndarray) -> np.ndarray:
    """True at every entry equal to an earlier entry of the same row."""
    order = np.argsort(draw, axis=1, kind="stable")
    sorted_draw = np.take_along_axis(draw, order, axis=1)
    dup_sorted = np.zeros(draw.shape, dtype=bool)
    dup_sorted[:, 1:] = sorted_draw[:, 1:] == sorted_draw[:, :-1]
    dup = np.zeros(draw.shape, dtype=bool)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return dup


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

    Raises:
        MGNMError: a user has interacted with every item, so no negative exists.

    Shapes:
        returns ``int64 [R, n]``.
    """
    users = np.asarray(users, dtype=np.int64)
    rows = users.shape[0]
    out = np.zeros((rows, n), dtype=np.int64)
    if rows == 0 or n == 0:
        return out
    stride = n_items + 1
    todo = np.arange(rows)
    for _ in range(_MAX_ROUNDS):
        # Redraw every entry of an unfinished row that is rejected, keep the others.
        if todo.size == 0:
            break
        block = out[todo]
        bad = block == 0
        block[bad] = rng.integers(1, n_items + 1, size=int(bad.sum()))
        reject = _is_member(sorted_keys, users[todo, None] * stride + block)
        if distinct:
            block[reject] = 0
            reject |= _duplicate_mask(block) & ~reject
        block[reject] = 0
        out[todo] = block
        todo = todo[reject.any(axis=1)]
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
) -> np.ndarray:
    """The persisted evaluation negatives: ``n`` distinct items per record.

    Uniform over the items the record's user never interacted with (whole sequence).
    Distinct within a row; a user with fewer than ``n`` allowed items gets a draw with
    replacement from them (so such a row repeats items).

    Shapes:
        offsets: ``[n_users + 1]``, items: ``[n_interactions]``, users: ``[R]``;
        returns ``int64 [R, n]``.
    """
    keys = interaction_keys(offsets, items, n_items)
    return sample_negatives(keys, users, n_items, n, rng, distinct=True)


def sample_training_negatives(
    dataset, records, n_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """Training negatives of one epoch, drawn afresh by the caller every epoch.

    Uniform and i.i.d. (with replacement, as in the authors' code), never an item of
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
