"""Checkpoints: state dicts, the run's config and a dataset fingerprint, in plain types.

A checkpoint is a dict of tensors, dicts, lists, strings and numbers only, so it loads
with ``torch.load(weights_only=True)`` and never unpickles code. Every way a file can
be wrong (missing, truncated, not a torch file, a torch file without our keys, a newer
format, another dataset) raises :class:`~mgnm_pyg.errors.CheckpointError` naming the
path and the reason.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgnm_pyg.errors import CheckpointError
from mgnm_pyg.files import atomic_path

FORMAT = "mgnm-pyg-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "model", "config", "dataset", "epoch")


def checkpoint_path(run_dir: str | Path, name: str) -> Path:
    """``RUN_DIR/checkpoints/<name>``: where a run keeps ``best.pt`` and ``last.pt``."""
    return Path(run_dir) / "checkpoints" / name


def _hash_ids(ids: np.ndarray) -> str:
    digest = hashlib.sha256()
    for raw in ids:
        digest.update(str(raw).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def dataset_fingerprint(dataset: Any) -> dict[str, Any]:
    """Name, sizes and hashes of the raw-id maps: what makes item/user indices meaningful."""
    return {
        "name": str(dataset.name),
        "n_users": int(dataset.n_users),
        "n_items": int(dataset.n_items),
        "user_ids_sha256": _hash_ids(dataset.user_ids),
        "item_ids_sha256": _hash_ids(dataset.item_ids),
    }


def check_dataset(checkpoint: dict[str, Any], dataset: Any, path: str | Path) -> None:
    """Refuse a dataset whose ids do not match the ones the checkpoint was trained on."""
    saved = checkpoint["dataset"]
    now = dataset_fingerprint(dataset)
    reasons = []
    for key, what in (("n_users", "users"), ("n_items", "items")):
        if saved.get(key) != now[key]:
            reasons.append(f"{saved.get(key)} {what} in training, {now[key]} here")
    if not reasons:
        for key, what in (("user_ids_sha256", "user"), ("item_ids_sha256", "item")):
            if saved.get(key) != now[key]:
                reasons.append(f"the {what} id maps differ")
    if reasons:
        raise CheckpointError(
            f"{path}: trained on dataset {saved.get('name')!r}, which does not match "
            f"dataset {now['name']!r} ({'; '.join(reasons)})"
        )


def save_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    config: dict[str, Any],
    dataset: dict[str, Any],
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically.

    Args:
        model: its ``state_dict()`` (moved to the CPU) and ``config`` are stored.
        config: the run's resolved :class:`TrainConfig` as a dict.
        dataset: :func:`dataset_fingerprint` of the training data.
        epoch: number of completed epochs.
        optimizer: its state dict, for resuming.
        state: trainer bookkeeping (best metric, patience counter, history).
    """
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": dict(getattr(model, "config", {})),
        "config": dict(config),
        "dataset": dict(dataset),
        "epoch": int(epoch),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "state": state or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_REDO = "restore it from a copy, or train the run again"


def _read_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with our own one-line reason when it fails.

    torch's messages are long and may advise ``weights_only=False``, which would run
    code from the file; they are never passed on.
    """
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if not head:
        what = "the file is empty"
    elif head != ZIP_MAGIC:
        what = "it is not a file written by torch.save (corrupted, or another format)"
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            what = ("it holds objects other than tensors and plain values, which are not "
                    "loaded because loading them could run code from the file")
        except Exception:  # torch raises many kinds for a damaged archive
            what = "the archive is truncated or corrupted"
    raise CheckpointError(f"{path}: not a readable checkpoint: {what}; {_REDO}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint on the CPU; raises :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    payload = _read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an mgnm-pyg checkpoint (no {FORMAT!r} marker)")
    version = payload.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this mgnm-pyg "
            f"reads ({FORMAT_VERSION}); upgrade mgnm-pyg"
        )
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return payload


def load_model_state(model: torch.nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Load the weights; a shape or key mismatch becomes a :class:`CheckpointError`."""
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise CheckpointError(f"{path}: weights do not fit the model: {first}") from None
