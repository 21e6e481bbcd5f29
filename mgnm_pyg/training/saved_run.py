"""A finished (or interrupted) run read back: its model and dataset, and its epoch log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.training.build import build_model, load_data, resolve_device
from mgnm_pyg.training.checkpoint import (
    check_dataset,
    checkpoint_path,
    load_checkpoint,
    load_model_state,
)
from mgnm_pyg.training.config import TrainConfig, config_from_dict

# Settings that may change when a run is resumed; the others define the run.
RESUMABLE_CHANGES = ("epochs", "patience", "device", "eval_batch_size", "eval_full",
                     "eval_per_user")


def default_run_dir(config: TrainConfig, root: str | Path = "runs") -> Path:
    """``runs/<data>-<YYYYmmdd-HHMMSS>``, with the data spec made filename-safe."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(config.data).name or config.data).strip("-")
    return Path(root) / f"{name or 'data'}-{datetime.now():%Y%m%d-%H%M%S}"


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_valid: dict[str, float]
    test_metrics: dict[str, dict[str, float]]


def resumed_config(run_dir: Path, changes: dict[str, Any] | None) -> tuple[dict, TrainConfig]:
    """The last checkpoint of ``run_dir`` and its config with ``changes`` applied.

    ``changes`` may only touch :data:`RESUMABLE_CHANGES`; anything else would make the
    resumed run a different run, so it is refused.
    """
    last = checkpoint_path(run_dir, "last.pt")
    if not last.exists():
        raise MGNMError(f"--resume {run_dir}: no completed epoch to resume from ({last} "
                        f"is missing); start the run again with --out")
    ckpt = load_checkpoint(last)
    config = config_from_dict(ckpt["config"], where=str(last))
    changes = changes or {}
    fixed = sorted(k for k, v in changes.items()
                   if k not in RESUMABLE_CHANGES and getattr(config, k) != v)
    if fixed:
        raise MGNMError(
            f"--resume {run_dir}: cannot change {', '.join(fixed)} of an existing run "
            f"(only {', '.join(RESUMABLE_CHANGES)} may change)"
        )
    return ckpt, config.replace(**{k: v for k, v in changes.items() if k in RESUMABLE_CHANGES})


@dataclass
class LoadedRun:
    """A run's model (in eval mode, on ``device``) with the dataset it is used on."""

    run_dir: Path
    config: TrainConfig
    model: torch.nn.Module
    dataset: Any
    device: torch.device
    checkpoint_path: Path
    epoch: int


def load_run(run_dir: str | Path, data: str | None = None, device: str = "auto",
             checkpoint: str = "best.pt", datasets: dict[tuple, Any] | None = None
             ) -> LoadedRun:
    """Load ``RUN_DIR/checkpoints/<checkpoint>`` and the dataset it is evaluated on.

    ``data`` (a dataset spec) defaults to the run's own. A dataset whose users or items
    do not match the checkpoint's is refused with a :class:`CheckpointError`.
    ``datasets`` is the cache of :func:`~mgnm_pyg.training.build.load_data`, for
    loading many runs.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MGNMError(f"{run_dir}: run folder not found")
    path = checkpoint_path(run_dir, checkpoint)
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"], where=str(path))
    if data is not None:
        config = config.replace(data=data)
    dataset = load_data(config, datasets)
    check_dataset(ckpt, dataset, path)
    model = build_model(config, dataset)
    load_model_state(model, ckpt, path)
    dev = resolve_device(device)
    model.to(dev).eval()
    return LoadedRun(run_dir, config, model, dataset, dev, path, int(ckpt["epoch"]))


def read_epoch_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` (one per finished epoch; [] before the first).

    Raises :class:`MGNMError` naming the file and line of a row that is not a JSON object.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MGNMError(f"{path}: cannot read ({exc})") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MGNMError(f"{path}, line {number}: not valid JSON ({exc.msg}, column "
                            f"{exc.colno})") from None
        if not isinstance(row, dict) or "epoch" not in row:
            raise MGNMError(f"{path}, line {number}: expected an object with an 'epoch' key")
        rows.append(row)
    return rows
