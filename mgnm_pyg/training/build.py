"""What a run is built from its config: the device, the prepared dataset and the model."""

from __future__ import annotations

from typing import Any

import torch

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.training.config import TrainConfig


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
