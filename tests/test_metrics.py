"""Metrics against hand-computed values and against scikit-learn's AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mgnm_pyg.metrics import (
    GAUCAccumulator,
    PerUserBestAccumulator,
    RankingAccumulator,
    hit_at_k,
    mrr_at_k,
    ndcg_at_k,
    pair_wins_from_rows,
    ranks_from_scores,
)


def test_ranks_hand_computed_with_ties_and_mask():
    pos = torch.tensor([0.5, 0.5, 0.5, 2.0])
    neg = torch.tensor(
        [
            [0.1, 0.2, 0.3],  # nothing above: rank 1
            [0.9, 0.5, 0.1],  # one above, one tie: rank 3
            [0.9, 0.8, 0.7],  # all above: rank 4
            [3.0, 3.0, 1.0],  # two above, but masked out below
        ]
    )
    mask = torch.tensor([[True] * 3, [True] * 3, [True] * 3, [False, True, True]])
    assert ranks_from_scores(pos, neg).tolist() == [1, 3, 4, 3]
    assert ranks_from_scores(pos, neg, mask).tolist() == [1, 3, 4, 2]


def test_constant_scorer_gets_last_rank_and_zero_metrics():
    n_neg = 1000
    pos = torch.zeros(7)
    neg = torch.zeros(7, n_neg)
    ranks = ranks_from_scores(pos, neg)
    assert ranks.tolist() == [n_neg + 1] * 7
    acc = RankingAccumulator((5, 10))
    acc.update(ranks)
    out = acc.compute()
    assert all(out[f"{m}@{k}"] == 0.0 for m in ("hit", "ndcg", "mrr") for k in (5, 10))
    gauc = GAUCAccumulator()
    users = torch.arange(7).repeat_interleave(n_neg + 1)
    labels = torch.cat([torch.ones(7, 1), torch.zeros(7, n_neg)], 1).reshape(-1)
    gauc.update(users, torch.zeros(users.numel()), labels)
    assert gauc.compute()["gauc"] == pytest.approx(0.5)


def test_nan_scores_count_against_the_positive():
    pos = torch.tensor([float("nan"), 1.0])
    neg = torch.tensor([[0.0, 0.0], [float("nan"), 0.0]])
    assert ranks_from_scores(pos, neg).tolist() == [3, 2]


def test_per_record_metrics_hand_computed():
    ranks = torch.tensor([1, 2, 5, 6])
    assert hit_at_k(ranks, 5).tolist() == [1, 1, 1, 0]
    assert ndcg_at_k(ranks, 5).tolist() == pytest.approx([1, 1 / math.log2(3), 1 / math.log2(6), 0])
    assert mrr_at_k(ranks, 5).tolist() == pytest.approx([1, 0.5, 0.2, 0])


def test_ranking_accumulator_matches_per_record_means_and_is_batch_invariant():
    rng = np.random.default_rng(0)
    ranks = torch.from_numpy(rng.integers(1, 30, size=500))
    whole = RankingAccumulator((1, 5, 20))
    whole.update(ranks)
    pieces = RankingAccumulator((20, 5, 1))
    for chunk in ranks.split(37):
        pieces.update(chunk)
    a, b = whole.compute(), pieces.compute()
    assert a == b
    assert a["n_records"] == 500
    for k in (1, 5, 20):
        assert a[f"hit@{k}"] == pytest.approx(hit_at_k(ranks, k).mean().item())
        assert a[f"ndcg@{k}"] == pytest.approx(ndcg_at_k(ranks, k).mean().item())
        assert a[f"mrr@{k}"] == pytest.approx(mrr_at_k(ranks, k).mean().item())


def test_ranking_accumulator_empty_is_nan():
    out = RankingAccumulator((5,)).compute()
    assert out["n_records"] == 0 and math.isnan(out["hit@5"])


def test_per_user_best_takes_each_users_smallest_rank():
    acc = PerUserBestAccumulator((5,))
    acc.update(torch.tensor([0, 3, 0]), torch.tensor([7, 2, 1]))
    acc.update(torch.tensor([3, 5]), torch.tensor([9, 6]))
    out = acc.compute()
    # best ranks: user 0 -> 1, user 3 -> 2, user 5 -> 6
    assert out["per_user_best_n_users"] == 3
    assert out["per_user_best_hit@5"] == pytest.approx(2 / 3)
    assert out["per_user_best_ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert out["per_user_best_mrr@5"] == pytest.approx((1 + 0.5) / 3)
    assert not any(key.startswith(("hit", "ndcg", "mrr")) for key in out)


def test_gauc_hand_computed_pools_a_user_across_batches():
    acc = GAUCAccumulator()
    # user 0, batch 1: positive 0.9, negatives 0.2 and 0.9 (a tie)
    acc.update(torch.tensor([0, 0, 0]), torch.tensor([0.9, 0.2, 0.9]), torch.tensor([1, 0, 0]))
    # user 0, batch 2: positive 0.1, negative 0.5; user 1: only positives (excluded)
    acc.update(
        torch.tensor([0, 0, 1, 1]),
        torch.tensor([0.1, 0.5, 0.3, 0.4]),
        torch.tensor([1, 0, 1, 1]),
    )
    # user 0 pooled: positives {0.9, 0.1}, negatives {0.2, 0.9, 0.5}
    # 0.9 beats 0.2, 0.5, ties 0.9 -> 2.5; 0.1 beats nothing -> 0; AUC = 2.5 / 6
    out = acc.compute()
    assert out["n_users_gauc"] == 1
    assert out["gauc"] == pytest.approx(2.5 / 6)


def test_gauc_weights_users_by_row_count():
    acc = GAUCAccumulator()
    # user 0: 2 rows, AUC 1; user 1: 4 rows, AUC 0
    acc.update(torch.tensor([0, 0]), torch.tensor([1.0, 0.0]), torch.tensor([1, 0]))
    acc.update(
        torch.tensor([1] * 4), torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([1, 0, 0, 0])
    )
    assert acc.compute()["gauc"] == pytest.approx((2 * 1 + 4 * 0) / 6)


def test_gauc_against_sklearn_on_random_rows_with_ties():
    rng = np.random.default_rng(1)
    n = 3000
    users = rng.integers(0, 40, size=n)
    scores = rng.integers(0, 6, size=n).astype(np.float32)  # few values: many ties
    labels = (rng.random(n) < 0.3).astype(np.int64)
    labels[users == 7] = 1  # a user with positives only is left out
    expected_num = expected_den = 0.0
    n_users = 0
    for u in np.unique(users):
        sel = users == u
        if labels[sel].min() == labels[sel].max():
            continue
        expected_num += sel.sum() * roc_auc_score(labels[sel], scores[sel])
        expected_den += sel.sum()
        n_users += 1
    acc = GAUCAccumulator()
    perm = rng.permutation(n)  # rows of a user arrive in many batches, in any order
    for chunk in np.array_split(perm, 13):
        acc.update(
            torch.from_numpy(users[chunk]),
            torch.from_numpy(scores[chunk]),
            torch.from_numpy(labels[chunk]),
        )
    out = acc.compute()
    assert out["n_users_gauc"] == n_users
    assert out["gauc"] == pytest.approx(expected_num / expected_den, rel=1e-12)


def test_pair_counts_path_agrees_with_rows_path():
    rng = np.random.default_rng(2)
    users = torch.from_numpy(rng.integers(0, 10, size=400))
    scores = torch.from_numpy(rng.integers(0, 4, size=400).astype(np.float64))
    labels = torch.from_numpy((rng.random(400) < 0.4).astype(np.int64))
    rows = GAUCAccumulator()
    rows.update(users, scores, labels)
    counts = GAUCAccumulator()
    u, n_pos, n_neg, wins2 = pair_wins_from_rows(users, scores, labels)
    for part in torch.arange(u.numel()).split(3):
        counts.update_pair_counts(u[part], n_pos[part], n_neg[part], wins2[part])
    assert rows.compute() == counts.compute()
    mixed = GAUCAccumulator()
    mixed.update(users, scores, labels)
    mixed.update_pair_counts(u, n_pos, n_neg, wins2)
    with pytest.raises(ValueError, match="both"):
        mixed.compute()


def test_gauc_without_any_user_with_both_labels_is_nan():
    acc = GAUCAccumulator()
    acc.update(torch.tensor([0, 1]), torch.tensor([0.3, 0.4]), torch.tensor([1, 0]))
    out = acc.compute()
    assert out["n_users_gauc"] == 0 and math.isnan(out["gauc"])


def test_states_of_disjoint_parts_merge_into_the_whole():
    """What the distributed evaluation relies on: summing ranking states, concatenating
    GAUC pair counts and summing padded best-rank tables of two accumulators fed disjoint
    users gives exactly the metrics of one accumulator fed everything."""
    gen = torch.Generator().manual_seed(3)
    users = torch.randint(0, 40, (300,), generator=gen)
    ranks = torch.randint(1, 15, (300,), generator=gen)
    n_pos = torch.randint(0, 3, (300,), generator=gen)
    n_neg = torch.randint(1, 9, (300,), generator=gen)
    wins2 = (torch.rand(300, generator=gen) * 2 * n_pos * n_neg).long()
    part = users % 2 == 0  # split by user, as the ranks of a distributed evaluation are

    def fed(rows):
        acc = (RankingAccumulator((1, 5, 10)), GAUCAccumulator(), PerUserBestAccumulator((5,)))
        acc[0].update(ranks[rows])
        acc[1].update_pair_counts(users[rows], n_pos[rows], n_neg[rows], wins2[rows])
        acc[2].update(users[rows], ranks[rows])
        return acc

    whole, a, b = fed(torch.ones_like(part)), fed(part), fed(~part)
    merged = fed(torch.zeros_like(part))
    merged[0].load_state(a[0].state() + b[0].state())
    merged[1].load_pair_count_state(torch.cat([a[1].pair_count_state(),
                                               b[1].pair_count_state()]))
    size = max(a[2].state().numel(), b[2].state().numel())
    tables = [torch.nn.functional.pad(x[2].state(), (0, size - x[2].state().numel()))
              for x in (a, b)]
    merged[2].load_state(tables[0] + tables[1])
    for got, want in zip(merged, whole, strict=True):
        assert got.compute() == pytest.approx(want.compute(), rel=1e-12)
    assert a[0].compute() != whole[0].compute()  # the parts alone differ from the whole

    raw = GAUCAccumulator()
    raw.update(users[:3], torch.rand(3), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="raw rows"):
        raw.pair_count_state()
