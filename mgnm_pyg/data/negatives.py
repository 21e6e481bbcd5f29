"""Negative items drawn from a random generator: per-epoch training negatives and
distinct draws (e.g. a benchmark's own evaluation negatives; the candidates of a
prepared dataset come from :mod:`mgnm_pyg.data.candidates`).

Both draws are uniform over the items a user never interacted with (the user's whole
sequence, so neither a history item nor the target can come up) and both are
vectorised: draw every entry at once, reject the entries that are not allowed, and
redraw and recheck only those, round after round.

* i.i.d. draws (training) look each redrawn (user, item) pair up in a sorted array of
  interaction keys ``user * (n_items + 1) + item``.
* distinct draws (evaluation) sort the first draw per row (fast for int32) and check
  only the redrawn entries afterwards (see :func:`_sample_distinct`). Keeping the
  accepted entries and redrawing the rest gives a uniform subset: the procedure treats
  all allowed items alike, so every subset of the allowed items of one size is equally
  likely.
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


def seen_pairs(sorted_keys: np.ndarray, users: np.ndarray, stride: int):
    """``(rows, items)``: every item that ``users[row]`` interacted with, for every row."""
    lo = np.searchsorted(sorted_keys, users * stride)
    hi = np.searchsorted(sorted_keys, (users + 1) * stride)
    counts = hi - lo
    rows = np.repeat(np.arange(users.shape[0], dtype=np.int64), counts)
    # index of each seen key: lo of its row plus its rank inside the row
    starts = np.cumsum(counts) - counts
    index = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts - lo, counts)
    return rows, sorted_keys[index] - users[rows] * stride


def _in_rows(block: np.ndarray, rows: np.ndarray, values: np.ndarray) -> tuple:
    """Whether ``values[i]`` occurs in row ``rows[i]`` of ``block`` (sorted rows).

    A vectorised bisection inside each row, in power-of-two steps: ``count`` ends as
    the number of row entries below the value. Returns ``(found, flat index of the
    first entry >= the value)``.
    """
    n = block.shape[1]
    flat = block.reshape(-1)
    start = rows * n
    count = np.zeros(rows.shape[0], dtype=np.int64)
    step = 1 << (n.bit_length() - 1)
    while step:
        probe = count + step
        # probe <= n: the entry at probe - 1 is inside the row
        below = flat[start + np.minimum(probe, n) - 1] < values
        count += step * (below & (probe <= n))
        step >>= 1
    pos = start + count
    found = (count < n) & (flat[np.minimum(pos, block.size - 1)] == values)
    return found, pos


def _sample_distinct(sorted_keys, users, n_items, n, rng):
    """Distinct draw: one sorted first draw, then rounds over the rejected entries only.

    The first draw is sorted per row, so duplicates sit side by side (the first of a run
    is kept) and each seen item is found by bisection in its row. A redrawn value is
    rejected if it is in the row's first draw (accepted there or seen), among the values
    accepted in earlier rounds, seen, or drawn twice in this round.
    """
    stride = n_items + 1
    block = rng.integers(1, stride, size=(users.shape[0], n), dtype=np.int32)
    block.sort(axis=1)
    reject = np.zeros(block.shape, dtype=bool)
    reject[:, 1:] = block[:, 1:] == block[:, :-1]
    seen_rows, seen_items = seen_pairs(sorted_keys, users, stride)
    found, pos = _in_rows(block, seen_rows, seen_items)
    reject.reshape(-1)[pos[found]] = True
    pending = np.flatnonzero(reject)
    rows = pending // n
    accepted = np.zeros(0, dtype=np.int64)  # sorted keys row * stride + item of redraws
    done_at, done_val = [], []
    for _ in range(_MAX_ROUNDS):
        if pending.size == 0:
            break
        values = rng.integers(1, stride, size=pending.size, dtype=np.int32)
        keys = rows * stride + values
        bad = _in_rows(block, rows, values)[0] | _is_member(accepted, keys)
        bad |= _is_member(sorted_keys, users[rows] * stride + values)
        order = np.argsort(keys, kind="stable")
        bad[order[1:]] |= keys[order[1:]] == keys[order[:-1]]
        good = ~bad
        done_at.append(pending[good])
        done_val.append(values[good])
        accepted = np.sort(np.concatenate([accepted, keys[good]]))
        pending, rows = pending[bad], rows[bad]
    flat = block.reshape(-1)
    for at, val in zip(done_at, done_val, strict=True):
        flat[at] = val
    block.sort(axis=1)
    return block.astype(np.int64), np.unique(rows)


def _sample_iid(sorted_keys, users, n_items, n, rng):
    stride = n_items + 1
    out = rng.integers(1, stride, size=(users.shape[0], n), dtype=np.int64)
    flat = out.reshape(-1)
    pending = np.arange(flat.shape[0], dtype=np.int64)
    for attempt in range(_MAX_ROUNDS + 1):
        reject = _is_member(sorted_keys, users[pending // n] * stride + flat[pending])
        pending = pending[reject]
        if pending.size == 0 or attempt == _MAX_ROUNDS:
            break
        flat[pending] = rng.integers(1, stride, size=pending.size, dtype=np.int64)
    return out, np.unique(pending // n)


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
            replacement) whenever the user has at least ``n`` allowed items, in
            ascending order (the order carries no meaning); a user with fewer allowed
            items gets a draw with replacement from them.

    Raises:
        MGNMError: a user has interacted with every item, so no negative exists.

    Shapes:
        returns ``int64 [R, n]``.
    """
    users = np.asarray(users, dtype=np.int64)
    rows = users.shape[0]
    if rows == 0 or n == 0:
        return np.zeros((rows, n), dtype=np.int64)
    sample = _sample_distinct if distinct else _sample_iid
    out, unfinished = sample(sorted_keys, users, n_items, n, rng)
    for row in unfinished:
        allowed = _allowed_items(sorted_keys, int(users[row]), n_items)
        if allowed.size == 0:
            raise MGNMError(
                f"user index {int(users[row])} has interacted with all {n_items} items, "
                "so no negative item can be drawn for it; filter such users out first"
            )
        replace = not distinct or allowed.size < n
        draw = rng.choice(allowed, size=n, replace=replace)
        out[row] = np.sort(draw) if distinct else draw
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
    """``n`` distinct negative items per record, drawn from ``rng``.

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


def shared_negative_distribution(dataset, records, sampling: str) -> np.ndarray:
    """Probabilities ``float64 [n_items + 1]`` of drawing each item as a shared negative
    (``--loss sampled-softmax``); item 0 (padding) has probability 0.

    ``"uniform"``: every item alike. ``"popularity"``: proportional to the item's count
    among ``records``' targets plus one, so every item can be drawn.
    """
    if sampling == "uniform":
        weights = np.ones(dataset.n_items + 1)
    elif sampling == "popularity":
        weights = np.bincount(records.targets, minlength=dataset.n_items + 1) + 1.0
    else:
        raise ValueError(f"negative_sampling must be 'uniform' or 'popularity', got {sampling!r}")
    weights[0] = 0.0
    return weights / weights.sum()


def sample_shared_negatives(probabilities: np.ndarray, n_batches: int, n: int,
                            rng: np.random.Generator) -> np.ndarray:
    """``n`` negatives for each of ``n_batches`` batches, i.i.d. from ``probabilities``
    (with replacement; the loss masks a negative equal to a record's target).

    Shapes:
        returns ``int64 [n_batches, n]``.
    """
    if np.allclose(probabilities[1:], probabilities[1]):
        return rng.integers(1, probabilities.shape[0], size=(n_batches, n), dtype=np.int64)
    cdf = np.cumsum(probabilities)
    draws = np.searchsorted(cdf, rng.random((n_batches, n)) * cdf[-1], side="right")
    return np.minimum(draws, probabilities.shape[0] - 1).astype(np.int64)
