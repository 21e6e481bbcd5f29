"""How personal a model's rankings are: do different users get different item orders?

A recommender can reach popularity-level accuracy while ranking every user's items in
the same order. Accuracy metrics cannot tell that apart from a weak personal model; the
agreement between users' full rankings can. Popularity scores 1 by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mgnm_pyg.nn.capsule import seeded_draws

__all__ = ["rank_correlation_matrix", "ranking_agreement"]


def rank_correlation_matrix(scores: Tensor) -> Tensor:
    r"""Spearman correlation between the rows of ``scores``.

    Each row is turned into ranks (ties ordered by column, the same for every row), centred
    and scaled to unit norm; the result is the matrix of dot products.

    Shapes:
        - scores: ``[U, N]`` (``N >= 2``); output: ``[U, U]``, ones on the diagonal
    """
    ranks = scores.argsort(dim=1, stable=True).argsort(dim=1, stable=True).to(torch.float64)
    ranks = ranks - ranks.mean(1, keepdim=True)
    ranks = ranks / ranks.norm(dim=1, keepdim=True)
    return ranks @ ranks.t()


@torch.no_grad()
def ranking_agreement(model: torch.nn.Module, dataset: Any, split: str = "test",
                      n_users: int = 200, max_len: int = 100, seed: int = 0,
                      batch_size: int = 50, device: torch.device | str = "cpu",
                      progress: bool = False) -> float:
    r"""Mean Spearman correlation between the full item rankings of pairs of users.

    ``n_users`` distinct users of ``split`` are drawn with ``seed`` (one record each, its
    history as the model sees it at that record); every item ``1..n_items`` is scored
    by ``model.predict``, and the correlation of :func:`rank_correlation_matrix` is
    averaged over all pairs of different users. 1 means every user gets the same order
    (a popularity ranker); values near 0, unrelated orders. History items are not
    removed: the question is the order the model produces. ``progress`` shows a bar.

    Raises:
        ValueError: fewer than 2 users in the split, or fewer than 2 items.
    """
    records = dataset.records[split]
    users, first = np.unique(records.users, return_index=True)  # each user's first record
    if len(users) < 2 or dataset.n_items < 2:
        raise ValueError(f"ranking agreement needs at least 2 users and 2 items; {split!r} "
                         f"has {len(users)} users and the dataset {dataset.n_items} items")
    rng = np.random.default_rng(seed)
    rows = np.sort(first[rng.choice(len(users), min(n_users, len(users)), replace=False)])
    items = torch.arange(1, dataset.n_items + 1, device=device)
    was_training = model.training
    model.eval()
    scores = []
    bar = tqdm(range(0, len(rows), batch_size), desc=f"ranking agreement ({split})",
               unit="batch", disable=not progress, leave=False)
    with seeded_draws(seed, device):  # the same answer each time under random routing logits
        for start in bar:
            part = rows[start : start + batch_size]
            histories = dataset.histories(records.users[part], records.positions[part],
                                          max_len)
            scores.append(model.predict(torch.as_tensor(records.users[part], device=device),
                                        torch.as_tensor(histories, device=device),
                                        items).cpu())
    model.train(was_training)
    corr = rank_correlation_matrix(torch.cat(scores))
    n = corr.size(0)
    return float((corr.sum() - corr.diagonal().sum()) / (n * (n - 1)))
