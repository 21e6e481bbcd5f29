"""Top-K recommendations for every user of a run's dataset, written to one Parquet file.

Users are scored in batches on the run's device, each from its known sequence (the last
``max_len`` items, as :func:`~mgnm_pyg.inference.recommend.recommend` does for one user),
and the items of the whole sequence are never recommended. The file is written
atomically: a crash leaves no partial file behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm.auto import tqdm

from mgnm_pyg.errors import RecommendError
from mgnm_pyg.files import atomic_path
from mgnm_pyg.inference.recommend import CANDIDATE_CHUNK
from mgnm_pyg.nn.capsule import seeded_draws
from mgnm_pyg.training.saved_run import LoadedRun

COLUMNS = ("user", "user_id", "rank", "item", "item_id", "score")


@torch.no_grad()
def _top_k(run: LoadedRun, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Item ids ``[B, k]`` and scores ``[B, k]`` of a batch of users (-inf past the
    items a user can get)."""
    data, device, model = run.dataset, run.device, run.model
    lengths = data.offsets[users + 1] - data.offsets[users]
    histories = data.histories(users, lengths, run.config.max_len)
    u = torch.as_tensor(users, device=device)
    interests = model.encode(u, torch.as_tensor(histories, device=device)).interests
    scores = torch.empty(len(users), data.n_items + 1, device=device)
    scores[:, 0] = -torch.inf
    for lo in range(1, data.n_items + 1, CANDIDATE_CHUNK):
        hi = min(lo + CANDIDATE_CHUNK, data.n_items + 1)
        items = torch.arange(lo, hi, device=device)
        scores[:, lo:hi] = model.pool_levels(model.score(interests, items)).float()
    rows = np.repeat(np.arange(len(users)), lengths)
    seen = np.concatenate([data.sequence(int(x)) for x in users])
    scores[torch.as_tensor(rows, device=device), torch.as_tensor(seen, device=device)] = -torch.inf
    top = torch.topk(scores, min(k, data.n_items), dim=1)
    return top.indices.cpu().numpy(), top.values.cpu().numpy()


def recommend_all(run: LoadedRun, out: str | Path, k: int = 50, batch_size: int = 256,
                  progress: bool = False) -> int:
    """Write the top-``k`` items of every user with a known sequence to ``out`` (Parquet).

    Columns: ``user`` and ``item`` (the run's internal ids), ``user_id`` and ``item_id``
    (raw ids), ``rank`` (1 = best) and ``score`` (the model's logit). A user gets fewer
    than ``k`` rows when fewer items lie outside its sequence. Returns the row count.
    """
    if k < 1 or batch_size < 1:
        raise RecommendError(f"k and the batch size must be at least 1, got {k} and "
                             f"{batch_size}")
    data = run.dataset
    run.model.eval()
    lengths = np.diff(data.offsets)
    users = np.flatnonzero(lengths > 0).astype(np.int64)
    user_ids = np.asarray(data.user_ids).astype(str)
    item_ids = np.asarray(data.item_ids).astype(str)
    parts = []
    bar = tqdm(total=len(users), desc="recommend", unit="user", disable=not progress,
               leave=False)
    with seeded_draws(run.config.seed, run.device):  # repeatable under random routing
        try:
            for start in range(0, len(users), batch_size):
                batch = users[start:start + batch_size]
                items, scores = _top_k(run, batch, k)
                rows, cols = np.nonzero(np.isfinite(scores))
                parts.append(pl.DataFrame({
                    "user": batch[rows], "user_id": user_ids[batch[rows]],
                    "rank": (cols + 1).astype(np.int32), "item": items[rows, cols],
                    "item_id": item_ids[items[rows, cols]], "score": scores[rows, cols],
                }))
                bar.update(len(batch))
        finally:
            bar.close()
    frame = pl.concat(parts) if parts else pl.DataFrame(
        schema={"user": pl.Int64, "user_id": pl.String, "rank": pl.Int32, "item": pl.Int64,
                "item_id": pl.String, "score": pl.Float32})
    with atomic_path(out) as tmp:
        frame.select(COLUMNS).write_parquet(tmp)
    return frame.height
