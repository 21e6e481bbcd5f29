r"""Learning-rate schedule: linear warm-up, then constant or cosine decay (not in the paper).

The factor on ``--lr`` is a function of the optimiser step alone (steps counted from 1
over the whole run), so a resumed run replays it without any saved state:

.. math::
    f(s) = \begin{cases} s / W & s \le W \\ 1 & \text{constant} \\
    \tfrac12 \big(1 + \cos(\pi \min(1, (s - W) / (T - W)))\big) & \text{cosine}
    \end{cases}

with ``W`` the warm-up steps (``lr_warmup_epochs`` times the steps of an epoch) and
``T`` the steps of ``epochs`` epochs. Changing ``--epochs`` on ``--resume`` therefore
stretches the rest of a cosine schedule.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LR_SCHEDULES", "lr_factor", "set_learning_rate"]

LR_SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, steps_per_epoch: int, epochs: int, schedule: str = "constant",
              warmup_epochs: float = 0.0) -> float:
    """The factor on the base learning rate at optimiser step ``step`` (from 1; module doc)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    warmup = warmup_epochs * steps_per_epoch
    if step <= warmup:
        return step / warmup
    if schedule == "constant":
        return 1.0
    total = epochs * steps_per_epoch
    progress = min(1.0, (step - warmup) / max(total - warmup, 1.0))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: Any, config: Any, step: int, steps_per_epoch: int) -> None:
    """Set every parameter group's learning rate for optimiser ``step`` (from 1) of the run:
    ``config.lr`` times :func:`lr_factor`; nothing for a model without an optimiser."""
    if optimizer is None:
        return
    factor = lr_factor(step, steps_per_epoch, config.epochs, config.lr_schedule,
                       config.lr_warmup_epochs)
    for group in optimizer.param_groups:
        group["lr"] = config.lr * factor
