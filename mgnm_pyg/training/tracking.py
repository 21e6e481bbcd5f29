"""``--tensorboard DIR``: the epoch rows of ``metrics.jsonl`` as TensorBoard scalars.

``metrics.jsonl`` stays the source of truth; this only mirrors each finished epoch
(training loss and its parts, every validation metric, the learning rate, the epoch's
wall times) for people who compare runs in TensorBoard. It needs the optional
``tensorboard`` package (``pip install 'mgnm-pyg[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgnm_pyg.errors import MGNMError


class TensorBoardLogger:
    """Writes one epoch row at a time to event files under ``log_dir``."""

    def __init__(self, log_dir: str | Path, optimizer: Any = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MGNMError(
                f"--tensorboard {log_dir}: the tensorboard package is not installed; "
                f"install it with: pip install 'mgnm-pyg[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.optimizer = optimizer

    def __call__(self, row: dict[str, Any]) -> None:
        step = int(row["epoch"])
        scalars = {"train/loss": row["train_loss"]}
        scalars.update({f"train/{k}": v for k, v in row.get("train_parts", {}).items()})
        scalars.update({f"valid/{k}": v for k, v in row.get("valid", {}).items()})
        scalars.update({f"time/{k}": v for k, v in row.get("timing", {}).items()})
        if self.optimizer is not None:
            scalars["optim/lr"] = self.optimizer.param_groups[0]["lr"]
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
