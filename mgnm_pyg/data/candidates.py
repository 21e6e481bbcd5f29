"""Evaluation candidates as a pure function of (seed, split, record, the user's items).

Each evaluation record gets ``n`` distinct negative items, uniform over the items its
user never interacted with. They come from a counter-based hash stream: entry ``c`` of
record ``r`` of split ``s`` is the item ``1 + (h * n_items) >> 32`` of the 32 high bits
``h`` of ``mix(key(seed, s, r) + c * GOLDEN)`` (splitmix64 mixing). A record's
candidates are the first ``n`` distinct allowed items of its stream in counter order:
the stream is i.i.d. uniform, so that set is a uniform ``n``-subset of the allowed items.

Nothing depends on which other records are computed in the same call, so the
candidates can be stored once (small data) or computed batch by batch during
evaluation (large data), with the same result. Rows still short after
``_ROUNDS`` rounds of ever longer streams (users who saw most of the catalogue) take
the ``n`` allowed items of smallest hash; a user with fewer than ``n`` allowed items
gets an i.i.d. draw from them (with replacement), from the same stream.
"""

from __future__ import annotations

import numpy as np

from mgnm_pyg.data.dataset import EVAL_SPLITS
from mgnm_pyg.data.negatives import seen_pairs
from mgnm_pyg.errors import MGNMError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
# Round j looks at counters 0 .. width * 2**j - 1; after the last round the exact
# fallback takes over.
_ROUNDS = 6
# Records per chunk when all candidates of a split are computed (the stored form): the
# temporaries of a chunk are a few times rows * width * 8 bytes.
CHUNK_RECORDS = 8192


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on ``uint64`` (wraps modulo 2**64); updates
    ``x`` in place (the streams are large, so one scratch buffer serves every shift)."""
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        for shift, factor in ((30, _M1), (27, _M2), (31, None)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            x ^= tmp
            if factor is not None:
                x *= factor
    return x


def _row_keys(seed: int, split: str, records: np.ndarray) -> np.ndarray:
    split_index = EVAL_SPLITS.index(split) if split in EVAL_SPLITS else len(EVAL_SPLITS)
    with np.errstate(over="ignore"):
        base = _mix(np.array([seed & (2**64 - 1)], dtype=np.uint64) + _GOLDEN)
        base = _mix(base ^ (np.uint64(split_index + 1) * _GOLDEN))
        return _mix(base + np.asarray(records, dtype=np.uint64) * _GOLDEN)


def _items(keys: np.ndarray, counters: np.ndarray, n_items: int) -> np.ndarray:
    """Items ``1..n_items`` of entries ``counters`` of the streams ``keys``: ``[R, C]``."""
    with np.errstate(over="ignore"):
        h = _mix(keys[:, None] + counters[None, :].astype(np.uint64) * _GOLDEN)
    h >>= np.uint64(32)
    h *= np.uint64(n_items)
    h >>= np.uint64(32)
    h += np.uint64(1)
    return h.view(np.int64)


def round_width(n: int, n_items: int) -> int:
    """Stream entries of the first round: 8% and 64 more than the expected number of
    uniform draws until ``n`` of the ``n_items`` are distinct, room for seen items.

    It only sets the speed: a row's candidates do not depend on it, as long as the row
    is complete within ``_ROUNDS`` rounds (rows that are not take the exact fallback).
    """
    if n >= n_items:
        return 2 * n + 64
    expected = n_items * np.log(n_items / (n_items - n))
    return int(1.08 * expected) + 64


def _seen_keys(sorted_keys: np.ndarray, users: np.ndarray, stride: int) -> np.ndarray:
    """Sorted keys ``row * stride + item`` of every item that ``users[row]`` saw."""
    rows, items = seen_pairs(sorted_keys, users, stride)
    # rows ascend and each user's keys ascend, so the result is sorted
    return rows * stride + items


def _first_allowed(values: np.ndarray, seen: np.ndarray, stride: int, n: int):
    """Per row, the first ``n`` distinct values not in ``seen`` (in column order), sorted.

    Returns ``(out [R, n], complete [R])``; incomplete rows of ``out`` are zeros.
    """
    rows, width = values.shape
    if width < n:
        return np.zeros((rows, n), dtype=np.int64), np.zeros(rows, dtype=bool)
    # Sorting each row by (value, column) puts a value's first entry at the head of its
    # run; rows are short, so a row-wise sort is much faster than one global argsort,
    # and int32 sorts faster than int64 where the codes fit.
    small = stride * width < 2**31
    code = values.astype(np.int32) if small else values.copy()
    code *= width
    code += np.arange(width, dtype=code.dtype)
    code.sort(axis=1)
    value = code // width
    column = code - value * width
    keep = np.ones(code.shape, dtype=bool)
    keep[:, 1:] = value[:, 1:] != value[:, :-1]
    if seen.shape[0]:
        # row * stride + value is sorted over the whole block, so each seen (row, item)
        # is looked up once, instead of every drawn value being looked up among the seen
        flat = (value + np.arange(rows, dtype=np.int64)[:, None] * stride).reshape(-1)
        pos = np.minimum(np.searchsorted(flat, seen), flat.shape[0] - 1)
        keep.reshape(-1)[pos[flat[pos] == seen]] = False  # the head of the value's run
    # the chosen entries: kept, with a column up to the n-th smallest kept column; in
    # value order already, so the rows come out ascending
    last = np.where(keep, column, width)
    last.sort(axis=1)
    last = last[:, n - 1]
    complete = last < width
    chosen = keep[complete] & (column[complete] <= last[complete, None])
    out = np.zeros((rows, n), dtype=np.int64)
    out[complete] = value[complete][chosen].reshape(-1, n)
    return out, complete


def _exact(sorted_keys, user: int, key: np.ndarray, n_items: int, n: int) -> np.ndarray:
    """The fallback of one row: the ``n`` allowed items of smallest hash (or an i.i.d.
    draw from the stream when fewer than ``n`` items are allowed)."""
    stride = n_items + 1
    lo, hi = np.searchsorted(sorted_keys, [user * stride, (user + 1) * stride])
    allowed = np.setdiff1d(np.arange(1, stride, dtype=np.int64),
                           sorted_keys[lo:hi] - user * stride, assume_unique=True)
    if allowed.size == 0:
        raise MGNMError(
            f"user index {user} has interacted with all {n_items} items, so no negative "
            "item can be drawn for it; filter such users out first")
    if allowed.size < n:
        pick = _items(key, np.arange(n), allowed.size)[0] - 1
        return np.sort(allowed[pick])
    with np.errstate(over="ignore"):
        h = _mix(key[0] ^ _mix(allowed.astype(np.uint64) + _GOLDEN))
    return np.sort(allowed[np.argsort(h, kind="stable")[:n]])


def record_candidates(
    sorted_keys: np.ndarray,
    n_items: int,
    seed: int,
    split: str,
    records: np.ndarray,
    users: np.ndarray,
    n: int,
) -> np.ndarray:
    """Candidates of the given records of ``split``, in ascending order per row.

    Args:
        sorted_keys: :func:`~mgnm_pyg.data.negatives.interaction_keys` of the dataset.
        n_items: number of real items (ids ``1..n_items``).
        seed: the dataset's candidate seed.
        split: ``valid`` or ``test``.
        records: ``[R]`` record indices inside the split.
        users: ``[R]`` the user of each record.
        n: candidates per record.

    Raises:
        MGNMError: a user has interacted with every item.

    Shapes:
        returns ``int64 [R, n]``; row ``i`` depends only on (seed, split,
        ``records[i]``, the items of ``users[i]``).
    """
    records = np.asarray(records, dtype=np.int64)
    users = np.asarray(users, dtype=np.int64)
    out = np.zeros((records.shape[0], n), dtype=np.int64)
    if records.shape[0] == 0 or n == 0:
        return out
    stride = n_items + 1
    keys = _row_keys(seed, split, records)
    pending = np.arange(records.shape[0])
    width = round_width(n, n_items)
    for _ in range(_ROUNDS):
        seen = _seen_keys(sorted_keys, users[pending], stride)
        got, complete = _first_allowed(_items(keys[pending], np.arange(width), n_items),
                                       seen, stride, n)
        out[pending[complete]] = got[complete]
        pending = pending[~complete]
        if pending.size == 0:
            break
        width *= 2
    for row in pending:
        out[row] = _exact(sorted_keys, int(users[row]), keys[row : row + 1], n_items, n)
    return out


def split_candidates(sorted_keys, n_items: int, seed: int, split: str, users: np.ndarray,
                     n: int, chunk: int = CHUNK_RECORDS) -> np.ndarray:
    """All candidates of a split (records ``0..R-1`` with users ``users``), computed
    ``chunk`` records at a time into one ``int64 [R, n]`` array."""
    rows = users.shape[0]
    out = np.zeros((rows, n), dtype=np.int64)
    for lo in range(0, rows, chunk):
        hi = min(lo + chunk, rows)
        out[lo:hi] = record_candidates(sorted_keys, n_items, seed, split,
                                       np.arange(lo, hi), users[lo:hi], n)
    return out
