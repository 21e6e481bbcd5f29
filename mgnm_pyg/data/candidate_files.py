"""The evaluation candidates of a prepared folder: ``candidates_{valid,test}.parquet``
(stored form) or only their seed in ``card.json`` (generated form).

A stored file has one column ``candidates``, a fixed-size Int32 array per record (item
ids fit, and it halves the largest file). Folders of format version 2 always store
them; version 3 adds the generated form (``storage.candidate_form``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mgnm_pyg.data.dataset import EVAL_SPLITS, PreparedDataset
from mgnm_pyg.errors import DataFormatError, MGNMError


def candidate_storage(dataset: PreparedDataset) -> dict[str, Any]:
    """The card's ``storage`` fields that describe the candidates."""
    width = {key: int(c.shape[1]) for key, c in dataset.candidates.items()}
    storage: dict[str, Any] = {"candidate_form": "stored", "candidate_width": width}
    if dataset.candidate_stream is not None:
        seed, n = dataset.candidate_stream
        generated = [key for key in EVAL_SPLITS if key not in dataset.candidates]
        storage.update(candidate_form="generated", candidate_seed=int(seed),
                       candidate_width={**width, **{key: int(n) for key in generated}},
                       generated_splits=generated)
    return storage


def write_candidates(dataset: PreparedDataset, folder: Path) -> None:
    """Write the stored splits' candidate files into ``folder``."""
    if dataset.n_items >= 2**31:
        raise MGNMError(f"{dataset.n_items} items do not fit the Int32 candidate files")
    for key, cand in dataset.candidates.items():
        if cand.shape[1] > 0:
            column = pl.Series("candidates", np.asarray(cand, dtype=np.int32))
            # zstd level 1: half the write time of the default level, 25% larger file
            pl.DataFrame([column]).write_parquet(
                folder / f"candidates_{key}.parquet", compression="zstd", compression_level=1)


def read_candidates(root: Path, storage: dict[str, Any], rows: dict[str, int], n_items: int,
                    read) -> tuple[dict[str, np.ndarray], tuple[int, int] | None]:
    """``(stored arrays, candidate_stream)`` of the folder ``root``.

    Args:
        root: the folder.
        storage: the card's ``storage`` section.
        rows: records per evaluation split.
        n_items: number of real items (the range candidates are checked against).
        read: ``read(path, schema, rows) -> DataFrame`` (the store's checked reader).

    Shapes:
        each stored array is ``int64 [rows, width]``.
    """
    generated = set(storage.get("generated_splits", ()))
    candidates: dict[str, np.ndarray] = {}
    stream = None
    for key in EVAL_SPLITS:
        width = int(storage["candidate_width"].get(key, 0))
        if key in generated:
            stream = (int(storage["candidate_seed"]), width)
            continue
        if width == 0:
            candidates[key] = np.zeros((rows[key], 0), dtype=np.int64)
            continue
        path = root / f"candidates_{key}.parquet"
        frame = read(path, {"candidates": pl.Array(pl.Int32, width)}, rows[key])
        cand = frame["candidates"].to_numpy().reshape(rows[key], width).astype(np.int64)
        if rows[key] and (cand.min() < 1 or cand.max() > n_items):
            raise DataFormatError(path, f"candidate items must be in 1..{n_items}")
        candidates[key] = cand
    return candidates, stream
