"""Blocked scoring of shared items equals the one-product scoring it replaces; encoding
by width equals encoding the padded batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgnm_pyg.models import MGNM
from mgnm_pyg.nn.readout import target_attention
from mgnm_pyg.training.eval_scoring import (
    encode_by_width,
    pair_counts,
    shared_item_scores,
    width_batches,
)


@pytest.mark.parametrize("pooling", ["max", "sum"])
def test_blocked_shared_scores_equal_the_whole_product(pooling):
    torch.manual_seed(0)
    model = MGNM(5, 23, dim=6, n_interests=3, n_layers=2, level_pooling=pooling).eval()
    users = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    histories = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [10, 0, 0, 0],
                              [11, 12, 13, 0], [14, 15, 16, 17], [18, 19, 0, 0]])
    items = torch.arange(1, 24)
    with torch.no_grad():
        interests = model.encode(users, histories).interests
        whole = model.pool_levels(model.score(interests, items))
        for rows, cols in [(2, 5), (3, 23), (7, 4), (100, 100)]:
            blocked = shared_item_scores(model, interests, items, rows, cols)
            torch.testing.assert_close(blocked, whole)


def test_shared_target_attention_and_level_max_equal_the_per_row_forms():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(3, 4, 2, 5, generator=gen, dtype=torch.float64)
    items = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    per_row = target_attention(q, items.expand(3, 7, 5))
    shared = target_attention(q, items)
    torch.testing.assert_close(shared, per_row)
    model = MGNM(2, 3)
    torch.testing.assert_close(model.pool_levels(shared), shared.max(1).values, rtol=0, atol=0)


def test_width_batches_cover_every_position_once_with_one_width_each():
    widths = np.random.default_rng(0).integers(0, 6, size=50)
    for batch_size in (1, 3, 7, 100):
        batches = width_batches(widths, batch_size)
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(50))
        for batch in batches:
            assert 1 <= batch.size <= batch_size
            assert np.unique(widths[batch]).size == 1
        firsts = [int(widths[b[0]]) for b in batches]
        assert firsts == sorted(firsts)


class _Records:
    def __init__(self, users, positions):
        self.users, self.positions = np.asarray(users), np.asarray(positions)


class _Histories:
    """Item ``10 * user + j`` at position ``j`` of each user's sequence."""

    @staticmethod
    def histories(users, positions, max_len):
        lengths = np.minimum(positions, max_len)
        out = np.zeros((users.size, int(lengths.max())), dtype=np.int64)
        for row, (u, p, n) in enumerate(zip(users, positions, lengths, strict=True)):
            out[row, :n] = 10 * u + np.arange(p - n, p) + 1
        return out


def test_encode_by_width_equals_the_padded_batch_in_the_records_order():
    torch.manual_seed(0)
    model = MGNM(6, 60, dim=6, n_interests=3, n_layers=2).eval()
    records = _Records([0, 1, 2, 3, 4, 5, 0, 2], [3, 1, 4, 2, 4, 5, 2, 3])
    index = np.array([7, 2, 0, 5, 1, 3, 6, 4])
    users = records.users[index]
    hist = _Histories.histories(users, records.positions[index], 4)
    with torch.no_grad():
        padded = model.encode(torch.from_numpy(users), torch.from_numpy(hist)).interests
        for batch_size in (1, 2, 8):
            got = encode_by_width(model, _Histories, records, index, 4, batch_size,
                                  torch.device("cpu"))
            torch.testing.assert_close(got, padded, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("width", [1, 3, 8, 9, 14])
def test_pair_counts_count_positives_below_and_at_each_score(width):
    gen = torch.Generator().manual_seed(width)
    rows = 6
    n_pos = torch.randint(1, width + 1, (rows,), generator=gen)
    values = torch.randint(-3, 4, (rows, width), generator=gen).float()  # ties on purpose
    table = torch.full((rows, width), float("inf"))
    for r in range(rows):
        table[r, : n_pos[r]] = values[r, : n_pos[r]].sort().values
    scores = torch.randint(-4, 5, (rows, 11), generator=gen).float()
    scores[0, 0] = float("inf")
    got = pair_counts(table, n_pos, scores)
    assert got.dtype == torch.int32
    for r in range(rows):
        positives = table[r, : n_pos[r]]
        for c in range(scores.size(1)):
            s = scores[r, c]
            assert int(got[r, c]) == int((positives <= s).sum() + (positives < s).sum())
