"""Evaluate a model on one split under the sampled or the full-ranking protocol.

Both protocols give every record one positive (its target) and a set of negatives:

* ``sampled`` (the paper's): the dataset's negatives ``dataset.evaluation_candidates(split, rows)``.
* ``full`` (Krichene & Rendle, KDD 2020): every item ``1..n_items`` except the items
  of the user's sequence before the target (all of them, not only the last
  ``max_len``) and except the target itself; the target stays the positive even when
  it also occurs earlier in the history.

GAUC pools all rows of a user (SPEC), so each negative must be compared with the
positives of *all* of its user's records. Records are therefore grouped by whole
users: a group's positives are scored first, then each negative is located among the
sorted positives of its user (:func:`~mgnm_pyg.training.eval_scoring.pair_counts`).
This is exact and needs memory for one batch and one item chunk only. The records of
consecutive groups (``ENCODE_WINDOW`` of them) are encoded first, in batches of one
history width each (:func:`~mgnm_pyg.training.eval_scoring.encode_by_width`), and every
record is encoded once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mgnm_pyg.data.dataset import EVAL_SPLITS, SPLITS, PreparedDataset
from mgnm_pyg.errors import MGNMError
from mgnm_pyg.metrics import GAUCAccumulator, PerUserBestAccumulator, RankingAccumulator
from mgnm_pyg.nn.capsule import seeded_draws
from mgnm_pyg.per_user_metrics import PerUserPooledAccumulator
from mgnm_pyg.training import distributed
from mgnm_pyg.training.config import TrainConfig
from mgnm_pyg.training.eval_groups import ENCODE_WINDOW, encode_windows, user_groups
from mgnm_pyg.training.eval_scoring import (
    encode_by_width,
    pair_counts,
    shared_item_scores,
    sorted_positives,
)

PROTOCOLS = ("sampled", "full")
def _history_pairs(dataset: PreparedDataset, users: np.ndarray, positions: np.ndarray):
    """(row, item) of every item before each target and of the target itself, sorted by
    item: the candidates the full protocol leaves out of a row's negatives.
    """
    lengths = positions + 1
    rows = np.repeat(np.arange(users.size), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = dataset.items[np.repeat(dataset.offsets[users], lengths) + within]
    order = np.argsort(items, kind="stable")
    return torch.from_numpy(rows[order]), torch.from_numpy(items[order])


class _SplitEvaluator:
    """Holds one evaluation's state: the model, the data and the accumulators."""

    def __init__(self, model, dataset, split, protocol, ks, max_len, device, item_chunk,
                 per_user_best, per_user_pooled=False):
        self.model, self.dataset, self.split, self.protocol = model, dataset, split, protocol
        self.records = dataset.records[split]
        self.max_len, self.device, self.item_chunk = max_len, torch.device(device), item_chunk
        self.ranking = RankingAccumulator(ks)
        # only fed when asked: its update touches a table of every user seen so far
        self.best = PerUserBestAccumulator(ks) if per_user_best else None
        self.pooled = PerUserPooledAccumulator(ks) if per_user_pooled else None
        self.gauc = GAUCAccumulator()
        self._nan = torch.zeros((), dtype=torch.bool, device=self.device)

    def encode(self, index: np.ndarray, batch_size: int) -> Tensor:
        """The interests of the records ``index``, in that order."""
        return encode_by_width(self.model, self.dataset, self.records, index, self.max_len,
                               batch_size, self.device)

    def _score(self, interests: Tensor, items: Tensor) -> Tensor:
        if items.dim() == 1:  # shared by every row (full ranking): in cache-sized blocks
            scores = shared_item_scores(self.model, interests, items)
        else:
            scores = self.model.pool_levels(self.model.score(interests, items))
        # checked once per batch in _negatives, so a GPU does not sync on every chunk
        self._nan |= torch.isnan(scores).any()
        return scores

    def _positives(self, interests: Tensor, index: np.ndarray) -> Tensor:
        targets = torch.from_numpy(self.records.targets[index]).to(self.device)
        return self._score(interests, targets.unsqueeze(1))[:, 0]

    def _negative_scores(self, interests: Tensor,
                         index: np.ndarray) -> Iterator[tuple[Tensor, Tensor | None]]:
        """Yield ``(scores [B, c], valid [B, c] or None)`` over the record's negatives."""
        if self.protocol == "sampled":
            cands = torch.from_numpy(self.dataset.evaluation_candidates(self.split, index))
            yield self._score(interests, cands.to(self.device)), None
            return
        records = self.records
        rows, items = _history_pairs(self.dataset, records.users[index], records.positions[index])
        for lo in range(1, self.dataset.n_items + 1, self.item_chunk):
            hi = min(lo + self.item_chunk, self.dataset.n_items + 1)
            chunk = torch.arange(lo, hi, device=self.device)
            a, b = np.searchsorted(items.numpy(), [lo, hi])
            valid = torch.ones(len(index), hi - lo, dtype=torch.bool)
            valid[rows[a:b], items[a:b] - lo] = False
            yield self._score(interests, chunk), valid.to(self.device)

    def _negatives(self, interests: Tensor, index: np.ndarray, pos: Tensor, table: Tensor,
                   n_pos: Tensor):
        """Rank each record's positive and count the GAUC pair wins of its negatives.

        A negative ``s`` of a user with positives ``p_1..p_P`` adds
        ``2 #(p > s) + #(p = s) = 2P - #(p <= s) - #(p < s)`` to the user's ``wins2``.
        """
        beaten = torch.zeros(len(index), dtype=torch.int64, device=self.device)
        below = torch.zeros_like(beaten)  # sum over negatives of #(p <= s) + #(p < s)
        n_neg = torch.zeros_like(beaten)
        single = int(n_pos.max()) == 1  # then the only positive is the record's own
        # the user's best positive (the table is sorted, +inf after the n_pos positives)
        top = pos if single else table.gather(1, (n_pos - 1).unsqueeze(1)).squeeze(1)
        pooled = torch.zeros_like(beaten)  # negatives at least as high as ``top``
        for scores, valid in self._negative_scores(interests, index):
            at_least = scores >= pos.unsqueeze(1)
            if self.pooled is not None:
                above_top = scores >= top.unsqueeze(1)
                pooled += (above_top if valid is None else above_top & valid).sum(1)
            if single:
                counts = at_least.to(torch.int32) + (scores > pos.unsqueeze(1))
            else:
                counts = pair_counts(table, n_pos, scores)
            if valid is not None:
                at_least &= valid
                counts.masked_fill_(~valid, 0)
                n_neg += valid.sum(1)
            else:
                n_neg += scores.shape[1]
            beaten += at_least.sum(1)
            below += counts.sum(1)
        if bool(self._nan):
            raise MGNMError(f"the model produced NaN scores while evaluating {self.split!r}")
        wins2 = 2 * n_pos * n_neg - below
        users = torch.from_numpy(self.records.users[index])
        ranks = (1 + beaten).cpu()
        self.ranking.update(ranks)
        if self.best is not None:
            self.best.update(users, ranks)
        if self.pooled is not None:
            self.pooled.update(users, pooled.cpu())
        self.gauc.update_pair_counts(users, torch.ones_like(users), n_neg.cpu(), wins2.cpu())

    def run_group(self, group: np.ndarray, interests: Tensor, batch_size: int) -> None:
        """Score one group of whole users, whose records' ``interests`` are given."""
        users = torch.from_numpy(self.records.users[group]).to(self.device)
        pos = self._positives(interests, group)  # all the group's positives first
        table, n_pos = sorted_positives(users, pos)
        for lo in range(0, group.size, batch_size):
            hi = lo + batch_size
            self._negatives(interests[lo:hi], group[lo:hi], pos[lo:hi], table[lo:hi],
                            n_pos[lo:hi])


@torch.no_grad()
def evaluate_split(
    model: torch.nn.Module,
    dataset: PreparedDataset,
    split: str = "test",
    protocol: str = "sampled",
    ks: tuple[int, ...] = (5,),
    batch_size: int = 512,
    max_len: int = 100,
    device: str | torch.device = "cpu",
    progress: bool = True,
    item_chunk: int = 4096,
    per_user_best: bool = False,
    per_user_pooled: bool = False,
) -> dict[str, float]:
    """HIT/NDCG/MRR at each K and GAUC of ``model`` on ``dataset.records[split]``.

    The model is used through ``encode(users, histories)``, ``score(interests, items)``
    (items ``[B, C]`` or ``[C]``) and ``pool_levels(level_scores)``; it must already be
    on ``device``. It runs in eval mode; its previous mode is restored afterwards.

    Args:
        model: the model (see ``docs/DESIGN.md``, "Model interface").
        dataset: the prepared dataset.
        split: ``"valid"``, ``"test"`` (or ``"train"`` for the full protocol).
        protocol: ``"sampled"`` (persisted negatives) or ``"full"`` (all items but the
            user's history).
        ks: the cut-offs K.
        batch_size: records per forward pass.
        max_len: most recent history items the model sees.
        device: where the scores are computed.
        progress: show a tqdm bar.
        item_chunk: items scored at once in the full protocol. Memory grows with
            ``batch_size * item_chunk`` and not with the number of items (batch 512,
            4096 items, 250k items in all: about 0.7 GB above the baseline on CPU).
        per_user_best: also report each user's best per-record rank
            (:class:`~mgnm_pyg.metrics.PerUserBestAccumulator`), under keys prefixed
            ``per_user_best_``.
        per_user_pooled: also report the per-user metric of the authors' code (each
            user's rows pooled, :mod:`mgnm_pyg.per_user_metrics`), under keys prefixed
            ``per_user_pooled_``.

    Returns:
        ``{"ndcg@K", "hit@K", "mrr@K" (each K), "gauc", "n_records", "n_users_gauc"}``,
        plus ``per_user_best_*`` and ``per_user_pooled_*`` on request. Counts are exact
        integers, so the result does not depend on ``batch_size`` or ``item_chunk``
        beyond the model's own floating-point noise.
    """
    if split not in SPLITS or split not in dataset.records:
        raise MGNMError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if protocol not in PROTOCOLS:
        raise MGNMError(f"unknown protocol {protocol!r}: expected 'sampled' or 'full'")
    if protocol == "sampled" and dataset.candidate_width(split) is None:
        raise MGNMError(
            f"dataset {dataset.name!r} has no persisted negatives for split {split!r} "
            f"(sampled evaluation exists for {', '.join(EVAL_SPLITS)}); use protocol='full'"
        )
    if batch_size < 1 or item_chunk < 1:
        raise MGNMError(f"batch_size and item_chunk must be >= 1, got {batch_size}, {item_chunk}")
    evaluator = _SplitEvaluator(model, dataset, split, protocol, ks, max_len, device, item_chunk,
                                per_user_best, per_user_pooled)
    records = evaluator.records
    if protocol == "sampled" and dataset.candidate_rows(split) != len(records):
        raise MGNMError(
            f"dataset {dataset.name!r}: {dataset.candidate_rows(split)} candidate rows "
            f"for {len(records)} {split!r} records"
        )
    was_training = model.training
    model.eval()
    try:
        # in a process group each rank scores its share of whole users (see distributed.py)
        groups = distributed.shard_groups(user_groups(records, max_len, batch_size))
        bar = tqdm(total=sum(g.size for g in groups), desc=f"{split} ({protocol})", unit="rec",
                   disable=not progress, leave=False)
        with bar:
            for window in encode_windows(groups, ENCODE_WINDOW):
                interests = evaluator.encode(np.concatenate(window), batch_size)
                start = 0
                for group in window:
                    evaluator.run_group(group, interests[start : start + group.size],
                                        batch_size)
                    start += group.size
                    bar.update(group.size)
    finally:
        model.train(was_training)
    distributed.reduce_evaluation(evaluator.ranking, evaluator.gauc, evaluator.best,
                                  evaluator.pooled)
    out = evaluator.ranking.compute()
    out.update(evaluator.gauc.compute())
    for extra in (evaluator.best, evaluator.pooled):
        if extra is not None:
            out.update(extra.compute())
    return out


def evaluate(model, dataset, split: str, protocol: str, ks, config: TrainConfig, device,
             progress: bool = False, per_user: bool = False) -> dict[str, float]:
    """One split under one protocol at ``config``'s batch size and ``max_len``, as floats;
    ``per_user`` adds the authors' per-user metric (``per_user_pooled_*``)."""
    model.eval()  # left in eval mode afterwards (evaluate_split restores the mode it found)
    # A model that draws inside its forward pass (--routing-init random) draws the same
    # numbers in every evaluation of the run, and the caller's generators are untouched.
    device = torch.device(device)
    with seeded_draws(config.seed, device):
        out = evaluate_split(model, dataset, split, protocol=protocol, ks=tuple(ks),
                             batch_size=config.eval_batch_size, max_len=config.max_len,
                             device=device, progress=progress, per_user_pooled=per_user)
    return {str(k): float(v) for k, v in out.items()}


def metric_names(metrics: dict[str, float]) -> list[str]:
    """Metric names in display order: GAUC, then NDCG/HIT/MRR by K; counts (``n_*``) left out."""
    def key(name: str) -> tuple[int, int, str]:
        base, _, k = name.partition("@")
        order = {"gauc": 0, "ndcg": 1, "hit": 2, "mrr": 3}.get(base, 4)
        return (int(k) if k.isdigit() else 0, order, name)

    return sorted((n for n in metrics if not n.startswith("n_") and "_n_" not in n), key=key)
