"""Train/validation/test splits of the records, in time order.

Records arrive sorted by (user, position): a user with sequence length ``L`` has
``n = L - 1`` records at positions ``1..L-1``, in time order. Each function returns
the indices of the records in each split (ascending, so each split keeps the
(user, position) order).

Rounding (``round`` is half-up, ``floor(x + 0.5)``, never banker's rounding):

* ``per-user``: ``n_test = round(0.2 n)``, ``n_valid = round(0.1 n)``, the first
  ``n - n_valid - n_test`` records train. So ``n <= 2`` is all train, ``n = 3, 4``
  gives one test record, ``n = 5`` one validation and one test record. Every user
  keeps at least one training record (the counts are lowered, validation first, if
  needed), so every user with a test record has training data.
* ``global-time``: records sorted by (time, user, position); the last
  ``round(0.2 R)`` are test, the ``round(0.1 R)`` before them validation. A
  validation/test record of a user without any training record is dropped (and
  counted), so every evaluated user has training data. This filter is not in the
  authors' code, which sorts all records by time and keeps them all.
* ``leave-one-out``: the last record is test and the one before it validation; a
  user with two records gets train + test, a user with one record train only.
"""

from __future__ import annotations

import numpy as np

from mgnm_pyg.errors import MGNMError

SPLIT_METHODS = ("per-user", "global-time", "leave-one-out")


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """``floor(x + 0.5)`` as int64."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _rank_and_count(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each record's 0-based rank inside its user's records, and that user's record count.

    Records must be grouped by user and in time order within a user (as prepared).
    """
    n_users = int(users.max()) + 1 if users.size else 0
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(users.shape[0]) - starts[users]
    return rank, counts[users]


def _by_rank(rank: np.ndarray, n_train: np.ndarray, n_valid: np.ndarray) -> dict[str, np.ndarray]:
    split = np.where(rank < n_train, 0, np.where(rank < n_train + n_valid, 1, 2))
    return {
        "train": np.flatnonzero(split == 0),
        "valid": np.flatnonzero(split == 1),
        "test": np.flatnonzero(split == 2),
    }


def split_per_user(users: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
    """7:1:2 of each user's records in time order (the paper's text)."""
    rank, n = _rank_and_count(users)
    n_test = round_half_up(0.2 * n)
    n_valid = round_half_up(0.1 * n)
    # Keep at least one training record: give up validation first, then test.
    over = np.maximum(n_test + n_valid - (n - 1), 0)
    cut = np.minimum(over, n_valid)
    n_valid = n_valid - cut
    n_test = n_test - (over - cut)
    return _by_rank(rank, n - n_valid - n_test, n_valid)


def split_leave_one_out(users: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Last record test, the one before it validation, the rest train."""
    rank, n = _rank_and_count(users)
    n_test = (n >= 2).astype(np.int64)
    n_valid = (n >= 3).astype(np.int64)
    return _by_rank(rank, n - n_valid - n_test, n_valid)


def split_global_time(
    users: np.ndarray, positions: np.ndarray, times: np.ndarray
) -> tuple[dict[str, np.ndarray], int]:
    """7:1:2 of all records sorted by time (the authors' code).

    Returns the split indices and the number of validation/test records dropped
    because their user has no training record.
    """
    order = np.lexsort((positions, users, times))
    total = order.shape[0]
    n_test = int(round_half_up(0.2 * total))
    n_valid = int(round_half_up(0.1 * total))
    n_train = total - n_valid - n_test
    train = np.sort(order[:n_train])
    has_train = np.zeros(int(users.max()) + 1 if users.size else 0, dtype=bool)
    has_train[users[train]] = True
    out = {"train": train}
    dropped = 0
    tail = (("valid", order[n_train : n_train + n_valid]), ("test", order[total - n_test :]))
    for name, part in tail:
        part = np.sort(part)
        keep = has_train[users[part]]
        dropped += int((~keep).sum())
        out[name] = part[keep]
    return out, dropped


def split_records(
    users: np.ndarray,
    positions: np.ndarray,
    times: np.ndarray | None,
    method: str,
    source: str = "the data",
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Split records with ``method``; returns indices per split and counts for the card.

    Raises:
        MGNMError: unknown method, or ``global-time`` on data without timestamps
            (``source`` names the file in the message).
    """
    users = np.asarray(users, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    info = {"eval_records_dropped_no_train": 0}
    if method == "per-user":
        parts = split_per_user(users, positions)
    elif method == "leave-one-out":
        parts = split_leave_one_out(users, positions)
    elif method == "global-time":
        if times is None:
            raise MGNMError(
                f"split 'global-time' needs timestamps, but {source} has none; "
                "use --split per-user or --split leave-one-out"
            )
        parts, info["eval_records_dropped_no_train"] = split_global_time(users, positions, times)
    else:
        raise MGNMError(f"unknown split {method!r}; expected one of {', '.join(SPLIT_METHODS)}")
    return parts, info
