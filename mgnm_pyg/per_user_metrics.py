r"""The per-user metric of the authors' code: each user's rows pooled.

Their evaluation (``calculate_group_metric`` in ``util_se.py``) puts all test rows of a
user together (each record's positive and its negatives), sorts them by score and ranks
the user's first positive: HIT/NDCG/MRR are computed once per user from that rank and
averaged over users. The rank of the best-scored positive ``p*`` of user ``u`` is

.. math::
    r_u = 1 + \#\{\text{negatives of all of } u\text{'s records with } s \ge p^*\}

(ties go against the positive, as for the per-record rank). Its keys carry the prefix
``per_user_pooled_`` so that it is never mixed with the per-record metrics (SPEC). It
differs from :class:`~mgnm_pyg.metrics.PerUserBestAccumulator` (``per_user_best_``), which
ranks each positive among its own record's negatives only and keeps the best rank.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .metrics import _metrics_from_histogram

__all__ = ["PerUserPooledAccumulator"]


class PerUserPooledAccumulator:
    """Per-user pooled ranks (module doc), fed record by record.

    ``update(users, beaten)`` adds, for each record, the number of its negatives scored at
    least as high as its user's best positive; a user's rank is 1 + the sum.
    """

    prefix = "per_user_pooled_"

    def __init__(self, ks: Iterable[int] = (5,)) -> None:
        self.ks = tuple(sorted({int(k) for k in ks}))
        self.reset()

    def reset(self) -> None:
        self._rank = torch.zeros(0, dtype=torch.int64)  # 0 = user not seen, else 1 + count

    def update(self, users: Tensor, beaten: Tensor) -> None:
        """Shapes: users, beaten ``[N]`` (one entry per record)."""
        users = users.detach().reshape(-1).to("cpu", torch.int64)
        beaten = beaten.detach().reshape(-1).to("cpu", torch.int64)
        if users.numel() == 0:
            return
        size = int(users.max()) + 1
        if size > self._rank.numel():
            grown = torch.zeros(size, dtype=torch.int64)
            grown[: self._rank.numel()] = self._rank
            self._rank = grown
        new = self._rank[users] == 0
        self._rank.index_add_(0, users[new].unique(), torch.ones_like(users[new].unique()))
        self._rank.index_add_(0, users, beaten)

    def compute(self) -> dict[str, float]:
        """``{"per_user_pooled_ndcg@K", ..., "per_user_pooled_n_users"}``."""
        ranks = self._rank[self._rank > 0]
        hist = torch.bincount(ranks.clamp(max=self.ks[-1] + 1), minlength=self.ks[-1] + 2)
        out = _metrics_from_histogram(hist.tolist(), int(ranks.numel()), self.ks, self.prefix)
        out[f"{self.prefix}n_users"] = int(ranks.numel())
        return out

    def state(self) -> Tensor:
        """``int64 [max user + 1]``; for disjoint users the element-wise sum merges two."""
        return self._rank.clone()

    def load_state(self, state: Tensor) -> None:
        self._rank = state.to("cpu", torch.int64).clone()
