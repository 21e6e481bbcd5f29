"""Negatives: never an item of the user's sequence; seeded; uniform; edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from mgnm_pyg.data.negatives import interaction_keys, sample_negatives
from mgnm_pyg.data.negatives import sample_training_negatives as training_negatives
from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.errors import MGNMError


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset("tiny")


def _hits_sequence(ds, users, negatives):
    return np.array([np.isin(row, ds.sequence(int(u))).any()
                     for u, row in zip(users, negatives, strict=True)])


def test_evaluation_candidates_avoid_sequence_and_are_distinct(tiny):
    for key in ("valid", "test"):
        rec, cand = tiny.records[key], tiny.candidates[key]
        assert cand.shape == (len(rec), 50) and cand.dtype == np.int64
        assert cand.min() >= 1 and cand.max() <= tiny.n_items
        assert not _hits_sequence(tiny, rec.users, cand).any()
        assert all(len(np.unique(row)) == row.shape[0] for row in cand)


def test_evaluation_candidates_are_persisted_per_seed(tiny):
    again = synthetic_dataset("tiny")
    other = synthetic_dataset("tiny", n_eval_negatives=50, seed=0, split="per-user")
    for key in ("valid", "test"):
        assert np.array_equal(tiny.candidates[key], again.candidates[key])
        assert np.array_equal(tiny.candidates[key], other.candidates[key])
    # Same log, another candidate seed: a different draw.
    from mgnm_pyg.data.prepare import prepare_interactions
    from mgnm_pyg.data.synthetic import PRESETS, generate_interactions

    opts = {k: v for k, v in PRESETS["tiny"].items() if k != "n_eval_negatives"}
    frame, _ = generate_interactions(seed=0, **opts)
    reseeded = prepare_interactions(frame, name="x", n_eval_negatives=50, seed=1)
    assert np.array_equal(reseeded.items, tiny.items)
    assert not np.array_equal(reseeded.candidates["test"], tiny.candidates["test"])


def test_training_negatives_avoid_sequence_and_follow_seed_and_epoch(tiny):
    rec = tiny.records["train"]
    draw = {e: training_negatives(tiny, rec, 5, np.random.default_rng([7, e])) for e in (0, 1)}
    assert draw[0].shape == (len(rec), 5)
    for neg in draw.values():
        assert not _hits_sequence(tiny, rec.users, neg).any()
        assert not np.any(neg == rec.targets[:, None])
    assert not np.array_equal(draw[0], draw[1])
    same = training_negatives(tiny, rec, 5, np.random.default_rng([7, 0]))
    assert np.array_equal(draw[0], same)


def test_draw_is_uniform_over_allowed_items():
    # One user who saw items 1..5 of 20: the other 15 must come up equally often.
    offsets, items = np.array([0, 5]), np.arange(1, 6)
    keys = interaction_keys(offsets, items, 20)
    draw = sample_negatives(keys, np.zeros(3000, dtype=np.int64), 20, 10,
                            np.random.default_rng(0), distinct=False)
    counts = np.bincount(draw.ravel(), minlength=21)
    assert counts[:6].sum() == 0
    expected = draw.size / 15
    chi2 = ((counts[6:] - expected) ** 2 / expected).sum()
    assert chi2 < 36.1  # 0.999 quantile of chi-square with 14 degrees of freedom
    # Distinct draws: each item's inclusion rate is n / allowed.
    rows = sample_negatives(keys, np.zeros(3000, dtype=np.int64), 20, 6,
                            np.random.default_rng(1), distinct=True)
    assert all(len(set(r)) == 6 for r in rows)
    rate = np.bincount(rows.ravel(), minlength=21)[6:] / 3000
    assert np.allclose(rate, 6 / 15, atol=0.05)


def test_nearly_saturated_users_fall_back_to_their_allowed_set():
    # User 0 saw 1..17 of 20 (3 allowed), user 1 saw only item 1.
    offsets = np.array([0, 17, 18])
    items = np.concatenate([np.arange(1, 18), [1]])
    keys = interaction_keys(offsets, items, 20)
    users = np.array([0, 0, 1])
    exact = sample_negatives(keys, users, 20, 3, np.random.default_rng(0), distinct=True)
    assert sorted(exact[0]) == [18, 19, 20] and sorted(exact[1]) == [18, 19, 20]
    more = sample_negatives(keys, users, 20, 8, np.random.default_rng(0), distinct=True)
    assert set(more[0].tolist()) <= {18, 19, 20}  # with replacement: only 3 exist
    assert len(set(more[2].tolist())) == 8 and 1 not in more[2]


def test_user_with_every_item_is_a_clear_error():
    keys = interaction_keys(np.array([0, 3]), np.array([1, 2, 3]), 3)
    with pytest.raises(MGNMError, match="interacted with all 3 items"):
        sample_negatives(keys, np.array([0]), 3, 1, np.random.default_rng(0), distinct=False)


def test_distinct_draw_gives_every_subset_the_same_chance():
    # User saw 1..3 of 8 items: 3 of the 5 allowed items make C(5, 3) = 10 subsets.
    # Drawing 3 of 8 rejects often, so most rows need several redraw rounds.
    keys = interaction_keys(np.array([0, 3]), np.arange(1, 4), 8)
    rows = sample_negatives(keys, np.zeros(10_000, dtype=np.int64), 8, 3,
                            np.random.default_rng(3), distinct=True)
    assert rows.min() >= 4 and np.all(np.diff(rows, axis=1) > 0)
    subset = (rows - 4) @ np.array([25, 5, 1])  # a number per (sorted) subset
    counts = np.unique(subset, return_counts=True)[1]
    assert counts.shape == (10,)
    chi2 = ((counts - 1000) ** 2 / 1000).sum()
    assert chi2 < 27.9  # 0.999 quantile of chi-square with 9 degrees of freedom


def test_distinct_draw_invariants_for_many_users_against_a_reference():
    # Users with different amounts of history, several rows per user, n close to the
    # catalogue: every row holds distinct unseen items, sorted, and the seed fixes it.
    rng = np.random.default_rng(0)
    n_items, n = 60, 25
    seqs = [rng.choice(np.arange(1, n_items + 1), size=k, replace=False)
            for k in (1, 5, 20, 30, 34, 2)]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    keys = interaction_keys(offsets, np.concatenate(seqs), n_items)
    users = np.repeat(np.arange(len(seqs)), 40)
    draw = sample_negatives(keys, users, n_items, n, np.random.default_rng(5), distinct=True)
    again = sample_negatives(keys, users, n_items, n, np.random.default_rng(5), distinct=True)
    assert np.array_equal(draw, again) and draw.dtype == np.int64
    for u, row in zip(users, draw, strict=True):
        allowed = np.setdiff1d(np.arange(1, n_items + 1), seqs[u])
        assert np.all(np.isin(row, allowed)) and np.all(np.diff(row) >= 0)
        assert len(np.unique(row)) == min(n, len(allowed))  # user 4: 26 allowed, 25 drawn


def test_row_bisection_matches_a_plain_search():
    from mgnm_pyg.data.negatives import _in_rows

    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 64):
        block = np.sort(rng.integers(1, 30, size=(9, n), dtype=np.int32), axis=1)
        rows = rng.integers(0, 9, size=200)
        values = rng.integers(0, 32, size=200)
        found, pos = _in_rows(block, rows, values)
        for r, v, f, p in zip(rows, values, found, pos, strict=True):
            assert f == (v in block[r])
            assert p == r * n + np.searchsorted(block[r], v)
