"""The running loss of one training epoch, read on the host only now and then.

On CUDA a read of the loss waits for the GPU, so the steps' losses stay on the device
in a window and are read together every :data:`LOSS_CHECK_EVERY` steps and at the end
of the epoch; a non-finite loss still names the exact step it appeared at. Under
torchrun every rank reads the same global values (``distributed.step_losses``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mgnm_pyg.errors import TrainingError
from mgnm_pyg.training import distributed

# The loss is read on the host (finiteness check, progress bar) every this many steps.
LOSS_CHECK_EVERY = 50


class LossTally:
    """Per-row means of an epoch's loss and of its parts.

    Args:
        epoch: the epoch being trained (for the error message).
        n_steps: its number of steps.
        last_path: the last good checkpoint, named if the loss goes non-finite.
        last_epoch: the epoch that checkpoint holds.
    """

    def __init__(self, epoch: int, n_steps: int, last_path: Path, last_epoch: int) -> None:
        self.epoch, self.n_steps = epoch, n_steps
        self.last_path, self.last_epoch = last_path, last_epoch
        self._window: list[tuple[torch.Tensor, float]] = []  # (loss, rows) since the last read
        self._part_sums: dict[str, torch.Tensor] = {}  # on the device: read once, at the end
        self._part_rows = 0
        self.total_loss, self.total_rows = 0.0, 0.0

    def add(self, step: int, loss: torch.Tensor, parts: dict[str, torch.Tensor], rows: int,
            weight: float) -> bool:
        """Record step ``step`` (1-based); returns True when the values were just read."""
        for name, value in parts.items():
            self._part_sums[name] = self._part_sums.get(name, 0.0) + value.double() * rows
        self._part_rows += rows
        self._window.append((loss.detach(), rows * weight))
        if step % LOSS_CHECK_EVERY and step != self.n_steps:
            return False
        for at, (value, n) in enumerate(distributed.step_losses(self._window)):
            if not math.isfinite(value):
                raise TrainingError(
                    f"the training loss is {value} at epoch {self.epoch}, step "
                    f"{step - len(self._window) + 1 + at} of {self.n_steps}; training "
                    f"stopped. The last good checkpoint is {self.last_path} "
                    f"(epoch {self.last_epoch}); try a lower --lr.")
            self.total_loss += value
            self.total_rows += n
        self._window.clear()
        return True

    @property
    def mean(self) -> float:
        """The loss per row over the steps read so far."""
        return self.total_loss / max(self.total_rows, 1)

    def part_means(self) -> dict[str, float]:
        """Per-row means of each loss part over the whole epoch (all ranks)."""
        return distributed.loss_part_means(self._part_sums, self._part_rows)
