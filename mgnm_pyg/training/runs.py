"""Building a run's model and data, evaluating it, and reading a saved run back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.io import atomic_write_json
from mgnm_pyg.training.checkpoint import (
    check_dataset,
    checkpoint_path,
    load_checkpoint,
    load_model_state,
)
from mgnm_pyg.training.config import TrainConfig, config_from_dict


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MGNMError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


def load_data(config: TrainConfig, cache: dict[tuple, Any] | None = None):
    """The run's prepared dataset (imported lazily: the data layer pulls in polars).

    ``cache``, a dict the caller keeps, loads each dataset once over many runs.
    """
    from mgnm_pyg.data.store import resolve_dataset

    key = (config.data, config.max_len, config.data_seed)
    if cache is not None and key in cache:
        return cache[key]
    dataset = resolve_dataset(config.data, max_len=config.max_len, seed=config.data_seed)
    if cache is not None:
        cache[key] = dataset
    return dataset


def build_model(config: TrainConfig, dataset: Any) -> torch.nn.Module:
    """``config.model`` (MGNM by default, also for checkpoints older than the field) for
    ``dataset``, initialised from ``torch.manual_seed(config.seed)``."""
    torch.manual_seed(config.seed)
    return config.build_model(dataset.n_users, dataset.n_items)


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in metrics.items()}


def evaluate(model, dataset, split: str, protocol: str, ks, config: TrainConfig, device,
             progress: bool = False, per_user: bool = False) -> dict[str, float]:
    """One split under one protocol, as plain floats; ``per_user`` adds the authors'
    per-user metric (``per_user_pooled_*``)."""
    from mgnm_pyg.training.evaluation import evaluate_split

    model.eval()  # left in eval mode afterwards (evaluate_split restores the mode it found)
    # A model that draws inside its forward pass (--routing-init random) draws the same
    # numbers in every evaluation of the run, and the caller's generators are untouched.
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        out = evaluate_split(model, dataset, split, protocol=protocol, ks=tuple(ks),
                             batch_size=config.eval_batch_size, max_len=config.max_len,
                             device=device, progress=progress, per_user_pooled=per_user)
    return _floats(out)


def metric_names(metrics: dict[str, float]) -> list[str]:
    """Metric names in display order: GAUC, then NDCG/HIT/MRR by K; counts (``n_*``) left out."""
    def key(name: str) -> tuple[int, int, str]:
        base, _, k = name.partition("@")
        order = {"gauc": 0, "ndcg": 1, "hit": 2, "mrr": 3}.get(base, 4)
        return (int(k) if k.isdigit() else 0, order, name)

    return sorted((n for n in metrics if not n.startswith("n_") and "_n_" not in n), key=key)


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
    ``datasets`` is the cache of :func:`load_data`, for loading many runs.
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


def evaluate_run(run: LoadedRun, split: str = "test", protocol: str = "sampled",
                 ks: tuple[int, ...] = (5,), batch_size: int | None = None,
                 progress: bool = False, agreement_users: int = 0, per_user: bool = False
                 ) -> tuple[dict[str, float], Path]:
    """Metrics of the run's model on ``split``, also written to ``eval_<split>_<protocol>.json``.

    ``agreement_users > 0`` adds ``ranking_agreement``
    (:func:`~mgnm_pyg.personalization.ranking_agreement` over that many users).
    """
    config = run.config if batch_size is None else run.config.replace(eval_batch_size=batch_size)
    metrics = evaluate(run.model, run.dataset, split, protocol, ks, config, run.device,
                       progress=progress, per_user=per_user)
    if agreement_users:
        from mgnm_pyg.personalization import ranking_agreement

        metrics["ranking_agreement"] = ranking_agreement(
            run.model, run.dataset, split, n_users=agreement_users, max_len=config.max_len,
            seed=config.seed, device=run.device)
    out = run.run_dir / f"eval_{split}_{protocol}.json"
    atomic_write_json(out, {"checkpoint": str(run.checkpoint_path), "epoch": run.epoch,
                            "data": run.config.data, "split": split, "protocol": protocol,
                            "metrics": metrics})
    return metrics, out


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


def stop_epoch(run_dir: str | Path, config: TrainConfig) -> int | None:
    """The epoch after which ``config``'s stopping rule (``epochs``, ``patience`` on
    validation ``select_metric``, as in the trainer) ends the finished run in
    ``run_dir``, replayed on its ``metrics.jsonl``; None when the rule would go on.

    None means the run stopped sooner than ``config`` would stop it: only the stopping
    rule differs, so resuming it from ``checkpoints/last.pt`` gives the run ``config``
    trains from the start (this is how ``benchmarks/reproduce.py --patience`` continues
    finished runs instead of retraining them).
    """
    from mgnm_pyg.training.trainer import improves, stops_after  # trainer imports runs

    best_value, best_epoch = None, 0
    for row in read_epoch_log(run_dir):
        epoch = int(row["epoch"])
        try:
            value = float(row["valid"][config.select_metric])
        except (KeyError, TypeError, ValueError) as exc:
            raise MGNMError(f"{Path(run_dir) / 'metrics.jsonl'}: epoch {epoch} has no validation "
                            f"{config.select_metric} ({exc!r})") from exc
        if improves(value, best_value):
            best_value, best_epoch = value, epoch
        if stops_after(config, epoch, epoch - best_epoch):
            return epoch
    return None
