r"""Training losses shared by every model: BCE with sampled negatives, full softmax, and a
sampled softmax over negatives shared by the batch.

``--loss bce`` is the paper's Eq. 16: binary cross-entropy of the positive (label 1) and
the sampled negatives (label 0), summed over rows (and over levels for MGNM). It is each
model's own ``loss(users, histories, items, labels)``.

``--loss softmax`` scores the target against every item ``1..n_items`` (padding 0
excluded) and sums the cross-entropy over records:

.. math::
    \mathcal{L} = \sum_{l} \sum_{r} -\log
    \frac{\exp y^{(l)}_r(t_r)}{\sum_{i=1}^{M} \exp y^{(l)}_r(i)} + \mathrm{reg}

``--loss sampled-softmax`` (a departure from the paper) replaces the ``M`` items of the
denominator by the target and ``N`` negatives drawn once per batch and shared by all its
records (so they cost one ``[B, K, N]`` product after the encode-once). A negative equal
to a record's target is masked out of that record's row. With a popularity-proportional
draw, the log-Q correction subtracts :math:`\log q(i)` from every logit (the target's
included), which makes the sampled softmax an unbiased estimate of the full one:

.. math::
    \mathcal{L} = \sum_{l} \sum_{r} -\log
    \frac{\exp(y^{(l)}_r(t_r) - \log q(t_r))}{\exp(y^{(l)}_r(t_r) - \log q(t_r))
    + \sum_{n=1}^{N} [s_n \ne t_r] \exp(y^{(l)}_r(s_n) - \log q(s_n))} + \mathrm{reg}

For MGNM, ``l`` runs over the levels (summed like Eq. 16) and ``reg`` keeps Eq. 17's
``theta1 * sum|A| + theta2 * sum ||p||^2``; a model with one score per record has one
level. Every model reaches these losses through the interface of
:class:`~mgnm_pyg.models.base.SequentialRecommender` (``encode``, ``train_scores``,
``regularization``); the popularity baseline overrides them to count instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LOSSES", "SharedNegatives", "bce_loss", "full_softmax_loss", "level_names",
           "level_of", "sampled_softmax_loss", "softmax_cross_entropy", "training_loss"]

LOSSES = ("bce", "softmax", "sampled-softmax")


class SharedNegatives(NamedTuple):
    """The negatives of one batch under ``sampled-softmax``, shared by all its records."""

    items: Tensor  #: ``[N]`` item ids in ``1..M``
    log_q: Tensor | None  #: ``[M + 1]`` log sampling probability by item id, or None


def level_names(term: str, n_levels: int) -> tuple[str, ...]:
    """Names of a loss term's per-level parts: ``bce_level0``, ``bce_level1``, ..."""
    return tuple(f"{term}_level{level}" for level in range(n_levels))


def level_of(name: str) -> int | None:
    """The level of a part named by :func:`level_names` (``"ce_level2"`` -> 2), else None."""
    term, _, level = name.rpartition("_level")
    return int(level) if term and level.isdigit() else None


def bce_loss(level_scores: Tensor, labels: Tensor) -> Tensor:
    """Sum of BCE-with-logits over levels and rows.

    Shapes:
        - level_scores: ``[B, L, C]`` logits; labels: ``[B, C]`` (0/1); output: scalar
    """
    labels = labels.to(level_scores.dtype).unsqueeze(1).expand_as(level_scores)
    return F.binary_cross_entropy_with_logits(level_scores, labels, reduction="sum")


def softmax_cross_entropy(level_scores: Tensor, targets: Tensor) -> Tensor:
    """Sum over records and levels of the cross-entropy of the target among all items.

    Column ``i`` of ``level_scores`` is item ``i + 1``: padding (item 0) is no class.

    Shapes:
        - level_scores: ``[B, L, M]`` logits of items ``1..M``; targets: ``[B]`` in
          ``1..M``; output: scalar
    """
    b, levels, n_items = level_scores.shape
    classes = (targets - 1).repeat_interleave(levels)  # row-major over (record, level)
    return F.cross_entropy(level_scores.reshape(b * levels, n_items), classes, reduction="sum")


def _softmax_parts(model: nn.Module, encoding, levels: Tensor, classes: Tensor,
                   n_records: int) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of ``classes`` ``[B]`` among the columns of ``levels`` ``[B, L, C]``,
    summed over records and levels, plus the model's regularisers; ``parts`` per record,
    with each level's cross-entropy when there is more than one level (logged only)."""
    b, n_levels, n_cols = levels.shape
    per_row = F.cross_entropy(levels.reshape(b * n_levels, n_cols),
                              classes.repeat_interleave(n_levels), reduction="none")
    ce = per_row.sum()
    reg, reg_parts = model.regularization(encoding)
    total = ce + reg
    names = ("ce", *reg_parts, "total")
    values = torch.stack([ce, *reg_parts.values(), total]).detach()
    if n_levels > 1:
        names += level_names("ce", n_levels)
        values = torch.cat([values, per_row.detach().view(b, n_levels).sum(0)])
    return total, dict(zip(names, (values / n_records).unbind(), strict=True))


def full_softmax_loss(model: nn.Module, users: Tensor, histories: Tensor,
                      targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Softmax cross-entropy over all items plus the model's regularisers (module doc).

    Memory grows with ``B * levels * n_items`` (MGNM also keeps ``K`` dot products per
    item): about 0.6 GB for MGNM at batch 256 on 12k items.

    Returns ``(sum, parts)``; ``parts`` holds each term divided by the number of records
    (detached 0-dim tensors).
    """
    encoding = model.encode(users, histories)
    items = torch.arange(1, model.config["n_items"] + 1, device=histories.device)
    levels = model.train_scores(encoding, items, targets)
    return _softmax_parts(model, encoding, levels, targets - 1, targets.numel())


def sampled_softmax_loss(model: nn.Module, users: Tensor, histories: Tensor, targets: Tensor,
                         negatives: SharedNegatives) -> tuple[Tensor, dict[str, Tensor]]:
    """The target against the batch's shared negatives (module doc), plus the model's
    regularisers. Column 0 of each row is the target; ``parts`` are per record.

    Shapes:
        - targets: ``[B]``; negatives.items: ``[N]``
    """
    encoding = model.encode(users, histories)
    positive = model.train_scores(encoding, targets.unsqueeze(1), targets)  # [B, L, 1]
    shared = model.train_scores(encoding, negatives.items, targets)  # [B, L, N]
    if negatives.log_q is not None:
        positive = positive - negatives.log_q[targets].view(-1, 1, 1)
        shared = shared - negatives.log_q[negatives.items]
    hits = (negatives.items.unsqueeze(0) == targets.unsqueeze(1)).unsqueeze(1)  # [B, 1, N]
    shared = shared.masked_fill(hits, float("-inf"))
    levels = torch.cat([positive, shared], dim=2)
    classes = torch.zeros_like(targets)
    return _softmax_parts(model, encoding, levels, classes, targets.numel())


def training_loss(model: nn.Module, kind: str, users: Tensor, histories: Tensor,
                  items: Tensor, labels: Tensor, negatives: SharedNegatives | None = None,
                  ) -> tuple[Tensor, dict[str, Tensor], int]:
    """The training loss of one batch under ``kind`` (one of :data:`LOSSES`).

    ``items``/``labels`` are the training candidates (positive in column 0, DESIGN.md);
    ``softmax`` and ``sampled-softmax`` read only the positive, and the latter also the
    batch's shared ``negatives``. Returns ``(loss, parts, rows)``: the loss is a sum over
    ``rows`` rows (record-candidate pairs for bce, records for the softmax losses).
    """
    if kind == "bce":
        loss, parts = model.loss(users, histories, items, labels)
        return loss, parts, labels.numel()
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    targets = items.gather(1, labels.argmax(1, keepdim=True)).squeeze(1)
    if kind == "softmax":
        loss, parts = model.softmax_loss(users, histories, targets)
    else:
        if negatives is None:
            raise ValueError("the sampled-softmax loss needs the batch's shared negatives")
        loss, parts = model.sampled_softmax_loss(users, histories, targets, negatives)
    return loss, parts, targets.numel()
