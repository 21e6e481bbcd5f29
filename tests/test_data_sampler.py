"""LengthBucketSampler: coverage, padding, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mgnm_pyg.data.sampler import LengthBucketSampler


@pytest.fixture
def skewed_lengths():
    # Many short histories and a long tail, like real sequence data.
    rng = np.random.default_rng(0)
    return np.minimum(1 + rng.geometric(0.08, size=5000), 100)


def _padding(lengths, batches):
    return sum(int(lengths[b].max()) * len(b) - int(lengths[b].sum()) for b in batches)


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_record_once_per_epoch(skewed_lengths, shuffle):
    sampler = LengthBucketSampler(skewed_lengths, 64, shuffle=shuffle, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-5000 // 64)
        assert all(b.dtype == np.int64 and 0 < len(b) <= 64 for b in batches)
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(5000))


def test_batches_are_length_homogeneous(skewed_lengths):
    bucketed = list(LengthBucketSampler(skewed_lengths, 64, seed=0))
    rng = np.random.default_rng(0)
    perm = rng.permutation(5000)
    random = [perm[i : i + 64] for i in range(0, 5000, 64)]
    assert _padding(skewed_lengths, bucketed) < 0.05 * _padding(skewed_lengths, random)


def test_deterministic_per_seed_and_epoch(skewed_lengths):
    a = LengthBucketSampler(skewed_lengths, 64, seed=3)
    b = LengthBucketSampler(skewed_lengths, 64, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    b.set_epoch(3)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    other_seed = LengthBucketSampler(skewed_lengths, 64, seed=4)
    other_seed.set_epoch(2)
    assert not all(np.array_equal(x, y) for x, y in zip(a, other_seed, strict=True))


def test_unshuffled_batches_are_in_index_order():
    sampler = LengthBucketSampler(np.array([5, 1, 3, 2, 4]), 2, shuffle=False)
    assert [b.tolist() for b in sampler] == [[0, 1], [2, 3], [4]]
    sampler.set_epoch(9)
    assert [b.tolist() for b in sampler] == [[0, 1], [2, 3], [4]]
