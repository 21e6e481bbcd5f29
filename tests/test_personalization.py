"""Ranking agreement between users: known values and a straightforward reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.insight.personalization import rank_correlation_matrix, ranking_agreement
from mgnm_pyg.models import Popularity, build_model


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the ranks (no ties in the inputs used here)."""
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    return float(np.corrcoef(ra, rb)[0, 1])


def test_rank_correlation_matches_pairwise_spearman():
    torch.manual_seed(0)
    scores = torch.randn(5, 30, dtype=torch.float64)
    corr = rank_correlation_matrix(scores)
    for i, j in itertools.product(range(5), repeat=2):
        assert corr[i, j].item() == pytest.approx(_spearman(scores[i].numpy(), scores[j].numpy()))
    # Known values: the same order is 1, the reversed order -1, whatever the scale.
    row = torch.arange(10.0)
    known = rank_correlation_matrix(torch.stack([row, 3 * row + 7, -row]))
    torch.testing.assert_close(known, torch.tensor([[1.0, 1, -1], [1, 1, -1], [-1, -1, 1]],
                                                   dtype=torch.float64))


class _ByHistory(torch.nn.Module):
    """Scores item ``i`` by ``cos(i * h)``, ``h`` the last history item: a personal order."""

    def __init__(self) -> None:
        super().__init__()
        self.produced: list[torch.Tensor] = []

    def predict(self, users, histories, items):
        last = histories.gather(1, (histories != 0).sum(1, keepdim=True) - 1).to(torch.float64)
        scores = torch.cos(items.to(torch.float64).unsqueeze(0) * last * 0.37)
        self.produced.append(scores)
        return scores


def test_popularity_agrees_fully_and_a_history_scorer_does_not():
    data = synthetic_dataset("tiny")
    pop = Popularity(data.n_users, data.n_items)
    with torch.no_grad():
        pop.counts.copy_(torch.arange(pop.counts.numel(), dtype=pop.counts.dtype) % 7)
    assert ranking_agreement(pop, data, n_users=20) == pytest.approx(1.0)
    by_history = _ByHistory()
    personal = ranking_agreement(by_history, data, n_users=20, batch_size=7)
    assert personal < 0.5
    # The mean over pairs of different users of the plain Spearman correlation.
    rows = torch.cat(by_history.produced).numpy()
    assert len(rows) == 20
    pairs = [_spearman(rows[i], rows[j]) for i, j in itertools.combinations(range(20), 2)]
    assert personal == pytest.approx(np.mean(pairs))
    # The same seed draws the same users; the model is left in the mode it came in.
    model = build_model("mgnm", data.n_users, data.n_items, {"dim": 8, "n_layers": 1})
    model.train()
    first = ranking_agreement(model, data, n_users=15, seed=3)
    assert model.training
    assert ranking_agreement(model, data, n_users=15, seed=3) == first
    assert -1.0 <= first <= 1.0


def test_too_few_users_is_a_clear_error():
    data = synthetic_dataset("tiny")
    data.records["test"] = data.records["test"].subset(data.records["test"].users == 0)
    with pytest.raises(ValueError, match="at least 2 users"):
        ranking_agreement(_ByHistory(), data)
