"""Split invariants: time order, 7:1:2 rounding, leave-one-out, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgnm_pyg.data.splits import split_records
from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.errors import MGNMError


def _records(counts):
    """Record arrays for users with ``counts[u]`` records each (positions 1..n)."""
    users = np.repeat(np.arange(len(counts)), counts)
    positions = np.concatenate([np.arange(1, c + 1) for c in counts]) if sum(counts) else users
    return users, positions


def _round(x):
    return int(np.floor(x + 0.5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_per_user_counts_order_and_train_coverage(counts):
    users, positions = _records(counts)
    parts, _ = split_records(users, positions, None, "per-user")
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(len(users)))
    for u, n in enumerate(counts):
        got = {k: positions[v][users[v] == u] for k, v in parts.items()}
        n_test, n_valid = _round(0.2 * n), _round(0.1 * n)
        assert len(got["test"]) == n_test and len(got["valid"]) == n_valid
        assert len(got["train"]) >= 1
        # Time order inside the user: train < valid < test.
        assert np.array_equal(np.concatenate([got["train"], got["valid"], got["test"]]),
                              np.arange(1, n + 1))


def test_per_user_global_proportions_are_7_1_2():
    ds = synthetic_dataset("tiny")
    sizes = np.array([len(ds.records[k]) for k in ("train", "valid", "test")], dtype=float)
    frac = sizes / sizes.sum()
    assert np.allclose(frac, [0.7, 0.1, 0.2], atol=0.04)
    train_users = set(ds.records["train"].users.tolist())
    assert set(ds.records["test"].users.tolist()) <= train_users
    # No training record of a user comes after that user's test records.
    last_train = np.zeros(ds.n_users, dtype=int)
    np.maximum.at(last_train, ds.records["train"].users, ds.records["train"].positions)
    test = ds.records["test"]
    assert np.all(test.positions > last_train[test.users])


@pytest.mark.parametrize("counts", [[1], [2], [3], [5, 1, 2, 9]])
def test_leave_one_out_is_exact(counts):
    users, positions = _records(counts)
    parts, _ = split_records(users, positions, None, "leave-one-out")
    for u, n in enumerate(counts):
        got = {k: positions[v][users[v] == u].tolist() for k, v in parts.items()}
        if n == 1:
            assert got == {"train": [1], "valid": [], "test": []}
        elif n == 2:
            assert got == {"train": [1], "valid": [], "test": [2]}
        else:
            assert got == {"train": list(range(1, n - 1)), "valid": [n - 1], "test": [n]}


def test_global_time_orders_by_time_and_keeps_evaluated_users_trained():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 12, size=60)
    users, positions = _records(counts)
    times = np.concatenate([np.sort(rng.integers(0, 1000, size=c)) for c in counts])
    parts, info = split_records(users, positions, times, "global-time")
    tr, va, te = (times[parts[k]] for k in ("train", "valid", "test"))
    assert te.min() >= tr.max() and va.min() >= tr.max() and te.min() >= va.max()
    total = len(users)
    assert len(parts["train"]) == total - _round(0.1 * total) - _round(0.2 * total)
    kept = len(parts["valid"]) + len(parts["test"]) + info["eval_records_dropped_no_train"]
    assert kept == _round(0.1 * total) + _round(0.2 * total)
    train_users = set(users[parts["train"]].tolist())
    assert set(users[parts["test"]].tolist()) <= train_users
    assert set(users[parts["valid"]].tolist()) <= train_users


def test_global_time_on_prepared_data():
    ds = synthetic_dataset("tiny", split="global-time")
    assert ds.records["test"].times.min() >= ds.records["train"].times.max()
    assert ds.card["options"]["split"] == "global-time"


def test_splits_are_deterministic():
    a, b = synthetic_dataset("tiny", seed=4), synthetic_dataset("tiny", seed=4)
    for key in ("train", "valid", "test"):
        assert np.array_equal(a.records[key].users, b.records[key].users)
        assert np.array_equal(a.records[key].positions, b.records[key].positions)


def test_unknown_and_impossible_splits_are_refused():
    users, positions = _records([3, 3])
    with pytest.raises(MGNMError, match="unknown split 'random'"):
        split_records(users, positions, None, "random")
    with pytest.raises(MGNMError, match="global-time"):
        split_records(users, positions, None, "global-time")
