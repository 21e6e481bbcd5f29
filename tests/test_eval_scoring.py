"""Blocked scoring of shared items equals the one-product scoring it replaces."""

from __future__ import annotations

import pytest
import torch

from mgnm_pyg.models import MGNM
from mgnm_pyg.nn.readout import target_attention
from mgnm_pyg.training.eval_scoring import shared_item_scores


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
