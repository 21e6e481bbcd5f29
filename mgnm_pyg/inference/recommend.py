"""Top-K recommendations for one user from a trained run, in raw ids.

Every item is scored with Eq. 15 (the run's level pooling, ``max`` by default, of the
target-attention score), except padding and the items of the history, which are never
recommended.

A user the run has never seen has no row in the user table, yet Eq. 1 needs ``x_u``.
Given an explicit history, such a user is scored with the mean of the trained user
embeddings standing in for ``x_u`` (a choice of this project; the paper has no cold-start
users). Without a history an unknown user is an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mgnm_pyg.data.dataset import find_user
from mgnm_pyg.errors import RecommendError
from mgnm_pyg.nn.capsule import seeded_draws
from mgnm_pyg.training.saved_run import LoadedRun

CANDIDATE_CHUNK = 65536  # items scored per forward pass, to bound memory on big catalogues


@dataclass
class Recommendation:
    """The answer for one user: items best first, with their scores (logits)."""

    user: str
    known_user: bool
    history: list[str]
    items: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"user": self.user, "known_user": self.known_user, "history": self.history,
                "recommendations": [{"item": i, "score": s}
                                    for i, s in zip(self.items, self.scores, strict=True)]}


def _user_embedding(model: torch.nn.Module, n_users: int) -> torch.nn.Embedding | None:
    """The model's user table: the embedding with ``n_users`` rows (preferring a 'user'
    name), or None for a model that does not use the user (the sequential baselines)."""
    tables = [(name, m) for name, m in model.named_modules()
              if isinstance(m, torch.nn.Embedding) and m.num_embeddings == n_users]
    tables.sort(key=lambda nm: "user" not in nm[0].lower())
    return tables[0][1] if tables else None


@contextlib.contextmanager
def _mean_user(model: torch.nn.Module, n_users: int) -> Iterator[None]:
    """Temporarily make user 0's row the mean of all trained user rows (nothing to do for
    a model without a user table: its scores depend on the history alone)."""
    table = _user_embedding(model, n_users)
    if table is None:
        yield
        return
    saved = table.weight.data[0].clone()
    table.weight.data[0] = table.weight.data.mean(0)
    try:
        yield
    finally:
        table.weight.data[0] = saved


def recommend(run: LoadedRun, user: str, k: int = 10,
              history: Sequence[str] | None = None) -> Recommendation:
    """Top-``k`` raw item ids for raw user id ``user``.

    Args:
        run: a loaded run (:func:`mgnm_pyg.training.saved_run.load_run`).
        user: the raw user id.
        k: number of items returned (fewer if the catalogue is smaller).
        history: raw item ids, oldest first. ``None`` uses the user's known sequence
            (its last ``max_len`` items); then every item of that sequence is excluded.
    """
    data, max_len = run.dataset, run.config.max_len
    if k < 1:
        raise RecommendError(f"k must be at least 1, got {k}")
    index = find_user(data, user)
    known = index is not None
    if history is None:
        if not known:
            raise RecommendError(
                f"unknown user {user!r} (not in dataset {data.name!r}); pass --history "
                f"ITEM ... to score a new user")
        sequence = data.sequence(index)
        hist = sequence[-max_len:]
        exclude = sequence
    else:
        item_index = {str(it): i for i, it in enumerate(data.item_ids) if i > 0}
        unknown = [it for it in history if it not in item_index]
        if unknown:
            raise RecommendError(
                f"unknown item id(s) in the history: {', '.join(map(repr, unknown))} "
                f"(not in dataset {data.name!r})")
        if not history:
            raise RecommendError("the history is empty; give at least one item")
        hist = np.array([item_index[it] for it in history], dtype=np.int64)[-max_len:]
        exclude = hist
    if len(hist) == 0:
        raise RecommendError(f"user {user!r} has no known items to build a history from")

    device = run.device
    users = torch.tensor([index if known else 0], device=device)
    histories = torch.as_tensor(np.asarray(hist, dtype=np.int64), device=device)[None]
    scores = torch.empty(data.n_items + 1)
    scores[0] = -torch.inf
    run.model.eval()
    ctx = contextlib.nullcontext() if known else _mean_user(run.model, data.n_users)
    with torch.no_grad(), ctx, seeded_draws(run.config.seed, device):
        interests = run.model.encode(users, histories).interests  # once, for every chunk
        for lo in range(1, data.n_items + 1, CANDIDATE_CHUNK):
            hi = min(lo + CANDIDATE_CHUNK, data.n_items + 1)
            items = torch.arange(lo, hi, device=device)[None]
            level_scores = run.model.score(interests, items)
            scores[lo:hi] = run.model.pool_levels(level_scores)[0].float().cpu()
    scores[torch.as_tensor(np.asarray(exclude, dtype=np.int64))] = -torch.inf
    n = min(k, int(torch.isfinite(scores).sum()))
    top = torch.topk(scores, n)
    return Recommendation(
        user=user, known_user=known,
        history=[str(data.item_ids[i]) for i in hist],
        items=[str(data.item_ids[i]) for i in top.indices.tolist()],
        scores=[float(s) for s in top.values.tolist()],
    )
