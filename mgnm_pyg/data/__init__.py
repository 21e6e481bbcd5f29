"""Data pipeline: preparation, splits, storage, negatives, batching, synthetic data.

Names are imported lazily (PEP 562), so importing one submodule, e.g.
``mgnm_pyg.data.store`` for ``mgnm-pyg datasets``, does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "dense_batch": "collate",
    "fully_connected_edges": "collate",
    "graph_batch": "collate",
    "EVAL_SPLITS": "dataset",
    "SPLITS": "dataset",
    "PreparedDataset": "dataset",
    "Records": "dataset",
    "sample_evaluation_candidates": "negatives",
    "sample_negatives": "negatives",
    "sample_training_negatives": "negatives",
    "prepare_interactions": "prepare",
    "LengthBucketSampler": "sampler",
    "SPLIT_METHODS": "splits",
    "split_records": "splits",
    "cache_key": "store",
    "data_dir": "store",
    "file_sha256": "readers",
    "list_datasets": "store",
    "load_dataset": "store",
    "prepare_cached": "store",
    "resolve_dataset": "store",
    "save_dataset": "store",
    "PRESETS": "synthetic",
    "generate_interactions": "synthetic",
    "synthetic_dataset": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
