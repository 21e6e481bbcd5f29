"""Reading a finished (or interrupted) run back: its config, dataset and best model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.io import atomic_write_json
from mgnm_pyg.training.checkpoint import check_dataset, load_checkpoint, load_model_state
from mgnm_pyg.training.config import TrainConfig, config_from_dict
from mgnm_pyg.training.trainer import build_model, evaluate, load_data, resolve_device


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
             checkpoint: str = "best.pt") -> LoadedRun:
    """Load ``RUN_DIR/checkpoints/<checkpoint>`` and the dataset it is evaluated on.

    ``data`` (a dataset spec) defaults to the run's own. A dataset whose users or items
    do not match the checkpoint's is refused with a :class:`CheckpointError`.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MGNMError(f"{run_dir}: run folder not found")
    path = run_dir / "checkpoints" / checkpoint
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"], where=str(path))
    if data is not None:
        config = config.replace(data=data)
    dataset = load_data(config)
    check_dataset(ckpt, dataset, path)
    model = build_model(config, dataset)
    load_model_state(model, ckpt, path)
    dev = resolve_device(device)
    model.to(dev).eval()
    return LoadedRun(run_dir, config, model, dataset, dev, path, int(ckpt["epoch"]))


def evaluate_run(run: LoadedRun, split: str = "test", protocol: str = "sampled",
                 ks: tuple[int, ...] = (5,), batch_size: int | None = None,
                 progress: bool = False) -> tuple[dict[str, float], Path]:
    """Metrics of the run's model on ``split``, also written to ``eval_<split>_<protocol>.json``."""
    config = run.config if batch_size is None else run.config.replace(eval_batch_size=batch_size)
    metrics = evaluate(run.model, run.dataset, split, protocol, ks, config, run.device,
                       progress=progress)
    out = run.run_dir / f"eval_{split}_{protocol}.json"
    atomic_write_json(out, {"checkpoint": str(run.checkpoint_path), "epoch": run.epoch,
                            "data": run.config.data, "split": split, "protocol": protocol,
                            "metrics": metrics})
    return metrics, out
