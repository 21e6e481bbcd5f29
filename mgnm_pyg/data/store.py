"""Prepared datasets on disk: one folder of Parquet files plus ``card.json``.

Layout of ``root/``:

* ``card.json``: the dataset card (source, options, statistics, split sizes) and a
  ``storage`` section (format tag, sizes, candidate widths) used to check the files;
* ``sequences.parquet``: ``user, item, time`` (time null without timestamps), one row
  per interaction, sorted by user then time (the CSR of :class:`PreparedDataset`);
* ``records_{train,valid,test}.parquet``: ``user, position, target, time``;
* ``candidates_{valid,test}.parquet``: the stored evaluation candidates, absent when
  only their seed is kept (:mod:`mgnm_pyg.data.candidate_files`);
* ``users.parquet`` / ``items.parquet``: ``id``, the raw ids (item row 0 is padding ``""``).

The folder is written atomically: either all of it is there or none of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mgnm_pyg.data.candidate_files import candidate_storage, read_candidates, write_candidates
from mgnm_pyg.data.dataset import EVAL_SPLITS, SPLITS, PreparedDataset, Records
from mgnm_pyg.data.prepare import PREPARE_VERSION, prepare_interactions
from mgnm_pyg.data.readers import file_sha256
from mgnm_pyg.errors import DataFormatError, MGNMError
from mgnm_pyg.files import atomic_directory, atomic_write_json

FORMAT = "mgnm-pyg prepared dataset"
FORMAT_VERSION = 3  # 2: candidates stored as Int32; 3: or only their seed (generated)
READ_VERSIONS = (2, 3)
_RECORD_SCHEMA = {"user": pl.Int64, "position": pl.Int64, "target": pl.Int64, "time": pl.Int64}
_SEQUENCE_SCHEMA = {"user": pl.Int64, "item": pl.Int64, "time": pl.Int64}
_ID_SCHEMA = {"id": pl.String}


def data_dir() -> Path:
    """Where prepared datasets live: ``$MGNM_DATA_DIR``, else ``./datasets``."""
    return Path(os.environ.get("MGNM_DATA_DIR", "datasets"))


_default_data_dir = data_dir  # resolve_dataset's argument shadows the name


def _optional(values: np.ndarray | None, length: int) -> pl.Series:
    if values is None:
        return pl.repeat(None, length, dtype=pl.Int64, eager=True)
    return pl.Series(np.asarray(values, dtype=np.int64))


def save_dataset(dataset: PreparedDataset, root: str | Path) -> Path:
    """Write ``dataset`` to the folder ``root`` atomically (replacing an old one)."""
    root = Path(root)
    counts = np.diff(dataset.offsets)
    storage = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": dataset.name,
        "n_users": dataset.n_users,
        "n_items": dataset.n_items,
        "n_interactions": dataset.n_interactions,
        "has_times": dataset.times is not None,
        "records": {key: len(rec) for key, rec in dataset.records.items()},
        **candidate_storage(dataset),
    }
    with atomic_directory(root) as tmp:
        pl.DataFrame({
            "user": np.repeat(np.arange(dataset.n_users, dtype=np.int64), counts),
            "item": np.asarray(dataset.items, dtype=np.int64),
            "time": _optional(dataset.times, dataset.n_interactions),
        }).write_parquet(tmp / "sequences.parquet")
        for key, rec in dataset.records.items():
            pl.DataFrame({
                "user": rec.users.astype(np.int64),
                "position": rec.positions.astype(np.int64),
                "target": rec.targets.astype(np.int64),
                "time": _optional(rec.times, len(rec)),
            }).write_parquet(tmp / f"records_{key}.parquet")
        write_candidates(dataset, tmp)
        for file, ids in (("users.parquet", dataset.user_ids), ("items.parquet", dataset.item_ids)):
            ids = pl.Series("id", np.asarray(ids).astype(str), dtype=pl.String)
            pl.DataFrame([ids]).write_parquet(tmp / file)
        atomic_write_json(tmp / "card.json", {**dataset.card, "storage": storage})
    return root


def _read(path: Path, schema: dict[str, pl.DataType] | None, rows: int | None) -> pl.DataFrame:
    if not path.is_file():
        raise DataFormatError(path, "file missing: the dataset is incomplete; prepare it again")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a damaged file
        reason = f"not a readable Parquet file (truncated or damaged): {exc}"
        raise DataFormatError(path, reason) from exc
    if schema is not None:
        found = {name: frame.schema[name] for name in frame.columns}
        if found != schema:
            want = ", ".join(f"{k}: {v}" for k, v in schema.items())
            have = ", ".join(f"{k}: {v}" for k, v in found.items())
            raise DataFormatError(path, f"expected columns {want}; found {have}")
    if rows is not None and frame.height != rows:
        raise DataFormatError(path, f"expected {rows} rows (card.json), found {frame.height}")
    return frame


def _read_card(root: Path) -> dict[str, Any]:
    if not root.is_dir():
        raise MGNMError(f"{root}: no such folder; expected a prepared dataset folder")
    path = root / "card.json"
    if not path.is_file():
        raise MGNMError(f"{root} is not a prepared dataset: card.json is missing")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(path, f"not valid JSON: {exc}") from exc
    storage = card.get("storage") if isinstance(card, dict) else None
    if not isinstance(storage, dict) or storage.get("format") != FORMAT:
        raise DataFormatError(path, f"not a prepared dataset card (no storage.format {FORMAT!r})")
    if storage.get("format_version") not in READ_VERSIONS:
        raise DataFormatError(
            path, f"format version {storage.get('format_version')} is not one of "
            f"{', '.join(map(str, READ_VERSIONS))}; prepare the dataset again with this "
            "version of mgnm-pyg")
    return card


def _int(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy().astype(np.int64, copy=False)


def load_dataset(root: str | Path) -> PreparedDataset:
    """Read a folder written by :func:`save_dataset`.

    Raises:
        MGNMError: the folder is missing, is not a prepared dataset, or a file is
            missing, truncated, of the wrong schema or inconsistent with the card.
    """
    root = Path(root)
    card = _read_card(root)
    storage = card.pop("storage")
    n_users, n_items = int(storage["n_users"]), int(storage["n_items"])
    has_times = bool(storage["has_times"])

    seq = _read(root / "sequences.parquet", _SEQUENCE_SCHEMA, storage["n_interactions"])
    users, items = _int(seq, "user"), _int(seq, "item")
    if users.size and (np.any(np.diff(users) < 0) or users[0] < 0 or users[-1] >= n_users):
        raise DataFormatError(root / "sequences.parquet", "users must be sorted and in range")
    if items.size and (items.min() < 1 or items.max() > n_items):
        raise DataFormatError(root / "sequences.parquet", f"items must be in 1..{n_items}")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    times = _int(seq, "time") if has_times else None

    records = {}
    for key in SPLITS:
        path = root / f"records_{key}.parquet"
        frame = _read(path, _RECORD_SCHEMA, storage["records"].get(key))
        rec = Records(_int(frame, "user"), _int(frame, "position"), _int(frame, "target"),
                      _int(frame, "time") if has_times else None)
        lengths = np.diff(offsets)
        if len(rec) and (rec.users.min() < 0 or rec.users.max() >= n_users
                         or np.any(rec.positions < 1)
                         or np.any(rec.positions >= lengths[rec.users])
                         or np.any(items[offsets[rec.users] + rec.positions] != rec.targets)):
            raise DataFormatError(path, "records do not match sequences.parquet")
        records[key] = rec

    candidates, stream = read_candidates(
        root, storage, {key: len(records[key]) for key in EVAL_SPLITS}, n_items, _read)

    user_ids = _read(root / "users.parquet", _ID_SCHEMA, n_users)["id"].to_numpy().astype(str)
    item_ids = _read(root / "items.parquet", _ID_SCHEMA, n_items + 1)["id"].to_numpy().astype(str)
    return PreparedDataset(
        name=str(storage.get("name", root.name)), n_users=n_users, n_items=n_items,
        offsets=offsets.astype(np.int64), items=items, times=times, records=records,
        candidates=candidates, user_ids=user_ids, item_ids=item_ids, card=card,
        candidate_stream=stream,
    )


def list_datasets(root: str | Path | None = None) -> list[str]:
    """Names of the prepared datasets (folders with a ``card.json``) under ``root``."""
    root = Path(root) if root is not None else data_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "card.json").is_file()
                  and not p.name.startswith("."))


def resolve_dataset(
    spec: str, data_dir: Path | None = None, max_len: int = 100, seed: int = 0
) -> PreparedDataset:
    """Turn a ``--data`` argument into a dataset.

    ``spec`` is ``synthetic`` (the ``demo`` preset), ``synthetic:PRESET``, the NAME of
    a folder under ``data_dir`` (default :func:`data_dir`), or a PATH to a prepared
    folder. Synthetic data is generated with ``seed`` (and ``max_len`` in its card).
    """
    from mgnm_pyg.data.synthetic import PRESETS, synthetic_dataset

    if spec == "synthetic" or spec.startswith("synthetic:"):
        preset = spec.partition(":")[2] or "demo"
        return synthetic_dataset(preset, seed=seed, max_len=max_len)
    root = Path(data_dir) if data_dir is not None else _default_data_dir()
    path = Path(spec)
    if (root / spec).is_dir() and not path.is_absolute():
        return load_dataset(root / spec)
    if path.is_dir():
        return load_dataset(path)
    names = list_datasets(root)
    known = ", ".join(names) if names else "none"
    raise MGNMError(
        f"unknown dataset {spec!r}: not a folder, and no prepared dataset of that name in "
        f"{root} (prepared: {known}; synthetic: synthetic, "
        + ", ".join(f"synthetic:{p}" for p in PRESETS) + ")"
    )


def cache_key(
    source_sha256: str | None,
    source_format: str | None,
    options: dict[str, Any],
    reader_options: dict[str, Any] | None = None,
) -> str:
    """Hash of everything a prepared folder depends on: input bytes, format, options, code.

    ``reader_options`` enter the hash only when there are some, so the keys of folders
    prepared without any stay the same.
    """
    content = {"sha256": source_sha256, "format": source_format,
               "options": options, "prepare_version": PREPARE_VERSION}
    if reader_options:
        content["reader_options"] = reader_options
    payload = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def prepare_cached(
    load_frame: Callable[[], pl.DataFrame],
    *,
    name: str,
    source_path: str | Path | None = None,
    source_format: str | None = None,
    reader_options: dict[str, Any] | None = None,
    root: str | Path | None = None,
    force: bool = False,
    **options: Any,
) -> tuple[PreparedDataset, bool]:
    """Prepare a dataset into ``root/name``, or reuse the folder if nothing changed.

    The folder is reused when its card's ``cache_key`` equals
    :func:`cache_key` of (SHA-256 of ``source_path``, ``source_format``, ``options``,
    ``reader_options``).
    Otherwise ``load_frame()`` is called (so an unchanged input is never parsed), the
    frame goes through :func:`prepare_interactions` with ``options``, and the result
    replaces ``root/name`` atomically.

    Args:
        load_frame: returns the reader's DataFrame; called only on a cache miss.
        name: dataset name, also the folder name.
        source_path: the raw file (hashed, and recorded in the card).
        source_format: the reader's format name (recorded, part of the key).
        reader_options: the options ``load_frame`` passes to the reader, e.g. the
            ``table`` columns (recorded when given, part of the key).
        root: where prepared datasets live (default :func:`data_dir`).
        force: prepare even on a cache hit.
        **options: keyword options of :func:`prepare_interactions` (split, max_len,
            rating_threshold, k_core, n_eval_negatives, seed).

    Returns:
        the dataset and whether the cached folder was reused.
    """
    target = (Path(root) if root is not None else data_dir()) / name
    sha = file_sha256(source_path) if source_path is not None else None
    reader_options = dict(reader_options or {})
    key = cache_key(sha, source_format, options, reader_options)
    if not force and (target / "card.json").is_file():
        try:
            cached = load_dataset(target)
        except MGNMError:
            cached = None  # a damaged folder is simply prepared again
        if cached is not None and cached.card.get("cache_key") == key:
            return cached, True
    source = {"path": None if source_path is None else str(source_path),
              "format": source_format, "sha256": sha}
    if reader_options:
        source["reader_options"] = reader_options
    dataset = prepare_interactions(load_frame(), name=name, source=source, **options)
    dataset.card["cache_key"] = key
    save_dataset(dataset, target)
    return dataset, False
