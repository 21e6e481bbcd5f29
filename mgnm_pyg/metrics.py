"""Ranking metrics (HIT, NDCG, MRR at K) and GAUC, as defined in SPEC "Metrics".

Every evaluation record has one positive and a set of negative candidates. Its rank is

.. math::
    \\mathrm{rank} = 1 + |\\{c : s_c > s_+\\}| + |\\{c : s_c = s_+\\}|,

so ties go against the positive and a constant scorer earns nothing. Then
``HIT@K = [rank <= K]``, ``NDCG@K = [rank <= K] / log2(rank + 1)`` and
``MRR@K = [rank <= K] / rank``, each averaged over records.

GAUC pools all of a user's rows (the positives and negatives of all of the user's
records) and weights each user's AUC by its number of rows:

.. math::
    \\mathrm{GAUC} = \\frac{\\sum_u n_u \\mathrm{AUC}_u}{\\sum_u n_u},\\qquad
    \\mathrm{AUC}_u = \\frac{\\sum_{p, n} [s_p > s_n] + \\tfrac12 [s_p = s_n]}{P_u N_u},

over the users with both labels (``P_u, N_u > 0``), ``n_u = P_u + N_u``.

The accumulators keep integer counts only (a histogram of small ranks; twice the
pair wins per user), so their results do not depend on how records are batched.
A NaN score counts against the positive, so a model that emits NaN earns nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor


def ranks_from_scores(pos: Tensor, neg: Tensor, neg_mask: Tensor | None = None) -> Tensor:
    """The rank of each positive among its negatives; ties go against the positive.

    Args:
        pos: the positive's score of each record.
        neg: the negatives' scores.
        neg_mask: ``True`` where a negative takes part; all take part when ``None``.

    Shapes:
        pos ``[N]``, neg ``[N, C]``, neg_mask ``[N, C]`` -> ``int64 [N]`` in ``1..C+1``.
    """
    beats = (neg >= pos.unsqueeze(-1)) | neg.isnan() | pos.isnan().unsqueeze(-1)
    if neg_mask is not None:
        beats &= neg_mask
    return 1 + beats.sum(dim=-1)


def hit_at_k(ranks: Tensor, k: int) -> Tensor:
    """``[rank <= k]`` per record, as ``float64 [N]``."""
    return (ranks <= k).to(torch.float64)


def ndcg_at_k(ranks: Tensor, k: int) -> Tensor:
    """``1 / log2(rank + 1)`` if ``rank <= k`` else 0, per record, as ``float64 [N]``."""
    gain = 1.0 / torch.log2(ranks.to(torch.float64) + 1.0)
    return torch.where(ranks <= k, gain, torch.zeros_like(gain))


def mrr_at_k(ranks: Tensor, k: int) -> Tensor:
    """``1 / rank`` if ``rank <= k`` else 0, per record, as ``float64 [N]``."""
    recip = 1.0 / ranks.to(torch.float64)
    return torch.where(ranks <= k, recip, torch.zeros_like(recip))


def _metrics_from_histogram(hist: list[int], n: int, ks: tuple[int, ...], prefix: str):
    """HIT/NDCG/MRR at each K from ``hist[r]`` = number of records (or users) of rank r."""
    out: dict[str, float] = {}
    for k in ks:
        if n == 0:
            hit = ndcg = mrr = float("nan")
        else:
            hit = sum(hist[1 : k + 1]) / n
            ndcg = sum(hist[r] / math.log2(r + 1) for r in range(1, k + 1)) / n
            mrr = sum(hist[r] / r for r in range(1, k + 1)) / n
        out[f"{prefix}ndcg@{k}"] = ndcg
        out[f"{prefix}hit@{k}"] = hit
        out[f"{prefix}mrr@{k}"] = mrr
    return out


class RankingAccumulator:
    """Record-level HIT, NDCG and MRR at several K, fed batch by batch with ranks.

    Keeps only how many records have each rank ``1..max(ks)``, so the result is exact
    and independent of batching.

    Args:
        ks: the cut-offs, e.g. ``(5,)`` for the paper's table.
    """

    def __init__(self, ks: Iterable[int] = (5,)) -> None:
        self.ks = tuple(sorted({int(k) for k in ks}))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"cut-offs must be positive integers, got {ks!r}")
        self.reset()

    def reset(self) -> None:
        self._hist = torch.zeros(self.ks[-1] + 2, dtype=torch.int64)
        self.n_records = 0

    def update(self, ranks: Tensor) -> None:
        """Add the ranks (``int [N]``, each >= 1) of a batch of records."""
        ranks = ranks.detach().reshape(-1).to("cpu", torch.int64)
        capped = ranks.clamp(max=self.ks[-1] + 1)
        self._hist += torch.bincount(capped, minlength=self._hist.numel())
        self.n_records += int(ranks.numel())

    def compute(self) -> dict[str, float]:
        """``{"ndcg@K", "hit@K", "mrr@K" for each K, "n_records"}``; NaN with no records."""
        out = _metrics_from_histogram(self._hist.tolist(), self.n_records, self.ks, "")
        out["n_records"] = self.n_records
        return out

    def state(self) -> Tensor:
        """``int64 [max(ks) + 3]``: the rank histogram, then the record count. The sum of
        the states of accumulators fed disjoint records is the state of one fed them all."""
        return torch.cat([self._hist, torch.tensor([self.n_records], dtype=torch.int64)])

    def load_state(self, state: Tensor) -> None:
        """Replace this accumulator's records by those of a :meth:`state`."""
        self._hist = state[:-1].to("cpu", torch.int64).clone()
        self.n_records = int(state[-1])


class PerUserBestAccumulator:
    """HIT/NDCG/MRR once per user, from the best rank any of its records' positives gets
    among that record's own negatives.

    Not the SPEC metric (which averages over records), and not the authors' code either,
    which ranks a user's best positive among all of the user's rows pooled
    (:class:`~mgnm_pyg.per_user_metrics.PerUserPooledAccumulator`); its keys carry the
    prefix ``per_user_best_`` so that none of them is mixed.

    Args:
        ks: the cut-offs.
    """

    prefix = "per_user_best_"

    def __init__(self, ks: Iterable[int] = (5,)) -> None:
        self.ks = tuple(sorted({int(k) for k in ks}))
        self.reset()

    def reset(self) -> None:
        self._best = torch.zeros(0, dtype=torch.int64)  # 0 = user not seen yet

    def update(self, users: Tensor, ranks: Tensor) -> None:
        """Keep, per user, the smallest rank seen so far. Shapes: users, ranks ``[N]``."""
        users = users.detach().reshape(-1).to("cpu", torch.int64)
        ranks = ranks.detach().reshape(-1).to("cpu", torch.int64)
        if users.numel() == 0:
            return
        size = int(users.max()) + 1
        if size > self._best.numel():
            grown = torch.zeros(size, dtype=torch.int64)
            grown[: self._best.numel()] = self._best
            self._best = grown
        big = torch.iinfo(torch.int64).max
        current = torch.where(self._best == 0, big, self._best)
        current = current.scatter_reduce(0, users, ranks, reduce="amin")
        self._best = torch.where(current == big, 0, current)

    def compute(self) -> dict[str, float]:
        """``{"per_user_best_ndcg@K", ..., "per_user_best_n_users"}``."""
        best = self._best[self._best > 0]
        hist = torch.bincount(best.clamp(max=self.ks[-1] + 1), minlength=self.ks[-1] + 2)
        out = _metrics_from_histogram(hist.tolist(), int(best.numel()), self.ks, self.prefix)
        out[f"{self.prefix}n_users"] = int(best.numel())
        return out

    def state(self) -> Tensor:
        """``int64 [max user + 1]``: each user's best rank, 0 where unseen. For disjoint
        users, the element-wise sum (after padding to one length) merges two states."""
        return self._best.clone()

    def load_state(self, state: Tensor) -> None:
        self._best = state.to("cpu", torch.int64).clone()


def pair_wins_from_rows(users: Tensor, scores: Tensor, labels: Tensor):
    """Per-user pair counts of a set of rows, for AUC with ties counting 1/2.

    Sorts the rows by (user, score) and, for each group of tied rows, counts the
    negatives of the same user below the group and inside it.

    Shapes:
        users, scores, labels ``[N]`` (labels 1 = positive, 0 = negative) ->
        ``(user ids [U], n_pos [U], n_neg [U], wins2 [U])`` where ``wins2`` is
        ``2 * #(s_p > s_n) + #(s_p = s_n)`` over the user's (positive, negative) pairs.
    """
    users = users.reshape(-1).to(torch.int64)
    scores = scores.reshape(-1)
    positive = labels.reshape(-1) > 0.5
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(users[order], stable=True)]
    u, s, pos = users[order], scores[order], positive[order]
    n = u.numel()
    new_user = torch.ones(n, dtype=torch.bool)
    new_user[1:] = u[1:] != u[:-1]
    new_group = new_user.clone()
    new_group[1:] |= s[1:] != s[:-1]
    group = torch.cumsum(new_group.to(torch.int64), 0) - 1
    user_slot = torch.cumsum(new_user.to(torch.int64), 0) - 1
    n_groups, n_users = int(group[-1]) + 1 if n else 0, int(user_slot[-1]) + 1 if n else 0

    neg = (~pos).to(torch.int64)
    group_pos = torch.zeros(n_groups, dtype=torch.int64).index_add_(0, group, pos.to(torch.int64))
    group_neg = torch.zeros(n_groups, dtype=torch.int64).index_add_(0, group, neg)
    # negatives of the same user strictly below each group
    neg_before = torch.cumsum(group_neg, 0) - group_neg
    group_user = torch.zeros(n_groups, dtype=torch.int64).index_copy_(0, group, user_slot)
    first_group_of_user = torch.zeros(n_users, dtype=torch.int64)
    first_group_of_user.index_copy_(0, user_slot[new_user], group[new_user])
    neg_before = neg_before - neg_before[first_group_of_user][group_user]
    group_wins2 = group_pos * (2 * neg_before + group_neg)

    wins2 = torch.zeros(n_users, dtype=torch.int64).index_add_(0, group_user, group_wins2)
    n_pos = torch.zeros(n_users, dtype=torch.int64).index_add_(0, group_user, group_pos)
    n_neg = torch.zeros(n_users, dtype=torch.int64).index_add_(0, group_user, group_neg)
    return u[new_user], n_pos, n_neg, wins2


class GAUCAccumulator:
    """GAUC pooled per user across batches, exact.

    Two ways to feed it (use one per user, never both for the same user):

    * :meth:`update` with raw rows ``(users, scores, labels)``. Rows are kept until
      :meth:`compute`, because a user's later rows must be compared with its earlier
      ones; memory grows with the number of rows.
    * :meth:`update_pair_counts` with per-row counts the caller computed against all
      of the user's positives (as :func:`~mgnm_pyg.training.evaluation.evaluate_split`
      does); memory grows with the number of updates' entries only.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._rows: list[tuple[Tensor, Tensor, Tensor]] = []
        self._counts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    def update(self, users: Tensor, scores: Tensor, labels: Tensor) -> None:
        """Add rows. Shapes: users, scores, labels ``[N]`` (labels in {0, 1})."""
        self._rows.append(
            tuple(t.detach().reshape(-1).to("cpu") for t in (users, scores, labels))
        )

    def update_pair_counts(
        self, users: Tensor, n_pos: Tensor, n_neg: Tensor, wins2: Tensor
    ) -> None:
        """Add pair counts: ``wins2 = 2 * #(s_p > s_n) + #(s_p = s_n)`` over the pairs of
        the same user that the entry covers; every pair must be covered exactly once.

        Shapes: all ``int [N]``.
        """
        self._counts.append(
            tuple(
                t.detach().reshape(-1).to("cpu", torch.int64)
                for t in (users, n_pos, n_neg, wins2)
            )
        )

    def pair_count_state(self) -> Tensor:
        """``int64 [N, 4]``: the pair counts fed so far (users, n_pos, n_neg, wins2), which
        concatenate across accumulators. Raw rows cannot be merged this way."""
        if self._rows:
            raise ValueError("only pair counts can be merged, and raw rows were fed")
        if not self._counts:
            return torch.zeros(0, 4, dtype=torch.int64)
        return torch.stack([torch.cat(c) for c in zip(*self._counts, strict=True)], 1)

    def load_pair_count_state(self, state: Tensor) -> None:
        """Replace what was fed by the pair counts of a :meth:`pair_count_state`."""
        self.reset()
        if state.numel():
            self._counts = [tuple(state[:, i].to("cpu", torch.int64) for i in range(4))]

    def compute(self) -> dict[str, float]:
        """``{"gauc", "n_users_gauc"}``; GAUC is NaN when no user has both labels."""
        parts = list(self._counts)
        if self._rows:
            users, scores, labels = (torch.cat(x) for x in zip(*self._rows, strict=True))
            parts.append(pair_wins_from_rows(users, scores, labels))
        if not parts:
            return {"gauc": float("nan"), "n_users_gauc": 0}
        users, n_pos, n_neg, wins2 = (torch.cat(x) for x in zip(*parts, strict=True))
        if self._rows and self._counts:
            row_users = torch.cat([r[0] for r in self._rows]).unique()
            count_users = torch.cat([c[0] for c in self._counts]).unique()
            if torch.isin(row_users, count_users).any():
                raise ValueError("a user was fed both as rows and as pair counts")
        uniq, inv = torch.unique(users, return_inverse=True)
        n_pos, n_neg, wins2 = (
            torch.zeros(uniq.numel(), dtype=torch.int64).index_add_(0, inv, t)
            for t in (n_pos, n_neg, wins2)
        )
        both = (n_pos > 0) & (n_neg > 0)
        if not bool(both.any()):
            return {"gauc": float("nan"), "n_users_gauc": 0}
        pos64, neg64 = n_pos[both].to(torch.float64), n_neg[both].to(torch.float64)
        auc = wins2[both].to(torch.float64) / (2.0 * pos64 * neg64)
        weight = pos64 + neg64
        gauc = float((auc * weight).sum() / weight.sum())
        return {"gauc": gauc, "n_users_gauc": int(both.sum())}
