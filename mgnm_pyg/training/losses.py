r"""Training losses shared by every model: BCE with sampled negatives, or full softmax.

``--loss bce`` is the paper's Eq. 16: binary cross-entropy of the positive (label 1) and
the sampled negatives (label 0), summed over rows (and over levels for MGNM). It is each
model's own ``loss(users, histories, items, labels)``.

``--loss softmax`` scores the target against every item ``1..n_items`` (padding 0
excluded) and sums the cross-entropy over records:

.. math::
    \mathcal{L} = \sum_{l} \sum_{r} -\log
    \frac{\exp y^{(l)}_r(t_r)}{\sum_{i=1}^{M} \exp y^{(l)}_r(i)} + \mathrm{reg}

For MGNM, ``l`` runs over the levels (cross-entropy per level, summed like Eq. 16) and
``reg`` keeps Eq. 17's ``theta1 * sum|A| + theta2 * sum ||p||^2``; a model with one score
per record has one level. A model may define its own ``softmax_loss`` (the popularity
baseline counts instead); otherwise :func:`full_softmax_loss` is used, built from the
model's ``encode``, ``train_scores`` (or ``score``) and ``regularization`` (if any).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LOSSES", "bce_loss", "full_softmax_loss", "level_names", "level_of",
           "softmax_cross_entropy", "training_loss"]

LOSSES = ("bce", "softmax")


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


def regularization(model: nn.Module, encoding, like: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The model's regularisers for this batch: its own ``regularization(encoding)``
    (MGNM: Eq. 17), or a zero like ``like``.
    """
    own = getattr(model, "regularization", None)
    if own is not None:
        return own(encoding)
    return like.new_zeros(()), {}


def full_softmax_loss(model: nn.Module, users: Tensor, histories: Tensor,
                      targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Softmax cross-entropy over all items plus the model's regularisers (module doc).

    Memory grows with ``B * levels * n_items`` (MGNM also keeps ``K`` dot products per
    item): about 0.6 GB for MGNM at batch 256 on 12k items.

    Returns ``(sum, parts)``; ``parts`` holds each term divided by the number of records
    (detached 0-dim tensors).
    """
    encoding = model.encode(users, histories)
    n_items = model.config["n_items"]
    items = torch.arange(1, n_items + 1, device=histories.device)
    train_scores = getattr(model, "train_scores", None)
    if train_scores is not None:
        levels = train_scores(encoding, items, targets)
    else:
        levels = model.score(encoding.interests, items)
    ce = softmax_cross_entropy(levels, targets)
    reg, reg_parts = regularization(model, encoding, ce)
    total = ce + reg
    names = ("ce", *reg_parts, "total")
    values = torch.stack([ce, *reg_parts.values(), total]).detach()
    n_levels = levels.shape[1]
    if n_levels > 1:  # each level's cross-entropy, logged only (see MGNM.loss)
        with torch.no_grad():
            per_level = F.cross_entropy(levels.detach().transpose(1, 2), targets.unsqueeze(1)
                                        .expand(-1, n_levels) - 1, reduction="none").sum(0)
        names += level_names("ce", n_levels)
        values = torch.cat([values, per_level])
    return total, dict(zip(names, (values / targets.numel()).unbind(), strict=True))


def training_loss(model: nn.Module, kind: str, users: Tensor, histories: Tensor,
                  items: Tensor, labels: Tensor) -> tuple[Tensor, dict[str, Tensor], int]:
    """The training loss of one batch under ``kind`` (``"bce"`` or ``"softmax"``).

    ``items``/``labels`` are the training candidates (positive in column 0, DESIGN.md);
    ``softmax`` reads only the positive. Returns ``(loss, parts, rows)``: the loss is a
    sum over ``rows`` rows (record-candidate pairs for bce, records for softmax).
    """
    if kind == "bce":
        loss, parts = model.loss(users, histories, items, labels)
        return loss, parts, labels.numel()
    if kind == "softmax":
        targets = items.gather(1, labels.argmax(1, keepdim=True)).squeeze(1)
        own = getattr(model, "softmax_loss", None)
        fn = own if own is not None else lambda *a: full_softmax_loss(model, *a)
        loss, parts = fn(users, histories, targets)
        return loss, parts, targets.numel()
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
