"""From an interaction log to a :class:`PreparedDataset` (SPEC, Protocol).

The input is a polars DataFrame with columns ``user: Utf8``, ``item: Utf8`` (integer
ids are accepted too, sorted numerically, kept as their decimal strings),
``rating: Float64`` (all null if the format has none), ``time: Int64`` (all null if
none) and ``order: Int64`` (0-based row order in the file, the tie-breaker). Steps,
in this order:

1. rating filter: keep ``rating > rating_threshold``; rows without a rating are kept;
2. duplicates: of several rows with the same (user, item, time), time not null, keep
   the first by ``order`` (rows without time are never duplicates: a repeated item
   stays a separate node, SPEC Model 2);
3. optional k-core: drop users and items with fewer than ``k`` rows, repeated until
   none is left;
4. drop users with fewer than 2 interactions;
5. ids: users ``0..N-1`` and items ``1..M`` (0 is padding) in sorted order of the
   raw id strings, so the ids do not depend on the row order of the file;
6. each user's interactions sorted by (time, order); every interaction at position
   ``p >= 1`` becomes a record (history = the up to ``max_len`` items before it);
7. split (:mod:`mgnm_pyg.data.splits`) and evaluation candidates
   (:mod:`mgnm_pyg.data.negatives`); validation/test records of a user who
   interacted with every item (no negative exists) are dropped and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from mgnm_pyg.data.candidates import split_candidates
from mgnm_pyg.data.dataset import EVAL_SPLITS, PreparedDataset, Records
from mgnm_pyg.data.negatives import interaction_keys
from mgnm_pyg.data.splits import split_records
from mgnm_pyg.errors import MGNMError

# Bump when the preparation changes what it produces: it is part of the cache key.
PREPARE_VERSION = 3  # 3: candidates a pure function of (seed, split, record, user's items)

CANDIDATE_FORMS = ("auto", "stored", "generated")
# Above this many bytes of int32 candidates, ``auto`` keeps only their seed: a stored
# array costs its size in memory and on disk for every process that loads the dataset.
STORED_CANDIDATE_BYTES = 256 * 2**20

_SCHEMA = {"user": pl.String, "item": pl.String, "rating": pl.Float64, "time": pl.Int64}


def _normalise_frame(df: pl.DataFrame, where: str) -> pl.DataFrame:
    missing = [c for c in ("user", "item") if c not in df.columns]
    if missing:
        raise MGNMError(
            f"{where}: the interaction table lacks column(s) {', '.join(missing)}; "
            f"expected user, item, rating, time, order (found {', '.join(df.columns)})"
        )
    cols = []
    for name, dtype in _SCHEMA.items():
        col = pl.col(name) if name in df.columns else pl.lit(None)
        if name in ("user", "item") and df.schema[name].is_integer():
            dtype = pl.Int64  # integer raw ids (synthetic data): sorted numerically
        cols.append(col.cast(dtype).alias(name))
    order = pl.col("order") if "order" in df.columns else pl.int_range(pl.len())
    cols.append(order.cast(pl.Int64).alias("order"))
    try:
        return df.select(cols)
    except pl.exceptions.PolarsError as exc:
        raise MGNMError(f"{where}: column types do not match the expected schema: {exc}") from exc


def _k_core(df: pl.DataFrame, k: int) -> pl.DataFrame:
    while True:
        before = df.height
        df = df.filter(
            (pl.len().over("user") >= k) & (pl.len().over("item") >= k)
        )
        if df.height == before:
            return df


def _dense_ids(df: pl.DataFrame, column: str, name: str, first: int) -> pl.DataFrame:
    """``column`` -> ``name``: ``first, first + 1, ...`` in sorted order of the raw ids.

    The same ids as ``rank("dense")``, several times faster on strings (one sort of the
    unique values, then a join).
    """
    table = df.select(pl.col(column).unique().sort())
    return table.with_columns(pl.int_range(first, first + table.height, dtype=pl.Int64).alias(name))


def candidate_form(requested: str, rows: list[int], n: int) -> str:
    """``stored`` or ``generated`` for ``--candidates`` ``requested`` (``auto`` picks by
    size: stored while the int32 arrays take at most :data:`STORED_CANDIDATE_BYTES`)."""
    if requested not in CANDIDATE_FORMS:
        raise MGNMError(f"candidates must be one of {', '.join(CANDIDATE_FORMS)}, "
                        f"got {requested!r}")
    if requested != "auto":
        return requested
    return "stored" if 4 * sum(rows) * n <= STORED_CANDIDATE_BYTES else "generated"


def _sequence_stats(lengths: np.ndarray) -> dict[str, float]:
    return {
        "mean_sequence_length": float(lengths.mean()),
        "median_sequence_length": float(np.median(lengths)),
        "max_sequence_length": int(lengths.max()),
        "min_sequence_length": int(lengths.min()),
    }


def prepare_interactions(
    df: pl.DataFrame,
    *,
    name: str,
    split: str = "per-user",
    max_len: int = 100,
    rating_threshold: float = 2.0,
    k_core: int | None = None,
    n_eval_negatives: int = 1000,
    seed: int = 0,
    source: dict[str, Any] | None = None,
    candidates: str = "auto",
) -> PreparedDataset:
    """Filter, index, build records, split and draw evaluation candidates.

    Args:
        df: the interaction log (see the module docstring for its columns).
        name: the dataset's name.
        split: ``per-user`` (default), ``global-time`` or ``leave-one-out``.
        max_len: history length the records are meant for (kept in the card; the
            histories themselves are cut at batch time).
        rating_threshold: positives have ``rating > rating_threshold`` (SPEC: 2).
        k_core: if set, iterate users and items to at least ``k_core`` rows each.
        n_eval_negatives: negatives per validation/test record (SPEC: 1000).
        seed: seed of the evaluation candidates (:mod:`mgnm_pyg.data.candidates`).
        source: JSON-able description of the input (``path``, ``format``, ``sha256``).
        candidates: ``stored`` (computed now, kept as arrays), ``generated`` (only the
            seed is kept; computed batch by batch when evaluating) or ``auto`` (stored
            while they take at most :data:`STORED_CANDIDATE_BYTES`). Both forms give
            the same candidates.

    Raises:
        MGNMError: missing columns, partial timestamps, nothing left after
            filtering, or ``global-time`` without timestamps.
    """
    source = dict(source or {})
    where = str(source.get("path") or name)
    df = _normalise_frame(df, where)
    stats: dict[str, Any] = {"rows_read": df.height}

    missing_ids = df.filter(pl.col("user").is_null() | pl.col("item").is_null()).height
    if missing_ids:
        df = df.drop_nulls(["user", "item"])
    stats["rows_missing_user_or_item"] = missing_ids

    before = df.height
    df = df.filter(pl.col("rating").is_null() | (pl.col("rating") > rating_threshold))
    stats["rows_filtered_by_rating"] = before - df.height

    n_null_time = df["time"].null_count()
    if 0 < n_null_time < df.height:
        raise MGNMError(
            f"{where}: {n_null_time} of {df.height} interactions have no timestamp; "
            "either every row or no row must have one"
        )
    has_time = df.height > 0 and n_null_time == 0

    before = df.height
    if has_time:
        df = df.sort("order").unique(["user", "item", "time"], keep="first", maintain_order=True)
    stats["duplicates_dropped"] = before - df.height

    before = df.height
    if k_core is not None and k_core > 1:
        df = _k_core(df, k_core)
    stats["rows_filtered_by_kcore"] = before - df.height

    users_before = df["user"].n_unique()
    df = df.filter(pl.len().over("user") >= 2)
    stats["users_dropped"] = users_before - df["user"].n_unique()

    if df.height == 0:
        raise MGNMError(
            f"{where}: nothing left after filtering ({stats['rows_read']} rows read, "
            f"{stats['rows_filtered_by_rating']} with rating <= {rating_threshold}, "
            f"{stats['duplicates_dropped']} duplicates, {stats['rows_filtered_by_kcore']} "
            f"by the {k_core}-core, {stats['users_dropped']} users with fewer than 2 "
            "interactions); check the rating threshold and k-core options"
        )

    user_table, item_table = _dense_ids(df, "user", "uid", 0), _dense_ids(df, "item", "iid", 1)
    # the raw id strings live on in the two tables: dropping them from the log right
    # away keeps the sort below (and the peak memory of a large log) to four int columns
    df = df.join(user_table, on="user", maintain_order="left").drop("user")
    df = df.join(item_table, on="item", maintain_order="left").select(
        "uid", "iid", "time", "order")
    sort_by = ["uid", "time", "order"] if has_time else ["uid", "order"]
    df = df.sort(sort_by)
    user_ids = user_table["user"].cast(pl.String).to_numpy().astype(str)
    item_ids = item_table["item"].cast(pl.String).to_numpy().astype(str)
    item_ids = np.concatenate([np.array([""]), item_ids])
    n_users, n_items = user_ids.shape[0], item_ids.shape[0] - 1

    uid = df["uid"].to_numpy()
    items = df["iid"].to_numpy().astype(np.int64)
    times = df["time"].to_numpy().astype(np.int64) if has_time else None
    counts = np.bincount(uid, minlength=n_users)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    position = np.arange(uid.shape[0], dtype=np.int64) - offsets[uid]
    at = np.flatnonzero(position >= 1)
    rec_users, rec_positions = uid[at].astype(np.int64), position[at]
    rec_times = None if times is None else times[at]
    parts, split_info = split_records(
        rec_users, rec_positions, rec_times, split, source=where
    )
    all_records = Records(rec_users, rec_positions, items[at], rec_times)
    # A user who interacted with every item has no negative to rank against: such a
    # user's validation/test records are dropped (and counted); training keeps them.
    keys = interaction_keys(offsets, items, n_items)
    distinct = np.bincount(keys // (n_items + 1), minlength=n_users)
    saturated = distinct >= n_items
    split_info["eval_records_dropped_no_negatives"] = 0
    for key in EVAL_SPLITS:
        keep = ~saturated[rec_users[parts[key]]]
        split_info["eval_records_dropped_no_negatives"] += int((~keep).sum())
        parts[key] = parts[key][keep]
    records = {key: all_records.subset(index) for key, index in parts.items()}

    form = candidate_form(candidates, [len(records[key]) for key in EVAL_SPLITS],
                          n_eval_negatives)
    stored = {}
    if form == "stored":
        stored = {key: split_candidates(keys, n_items, seed, key, records[key].users,
                                        n_eval_negatives) for key in EVAL_SPLITS}

    stats.update(
        users=n_users,
        items=n_items,
        interactions=int(items.shape[0]),
        records=len(all_records),
        **_sequence_stats(counts),
        **split_info,
    )
    card = {
        "name": name,
        "source": source,
        "options": {
            "split": split,
            "max_len": max_len,
            "rating_threshold": rating_threshold,
            "k_core": k_core,
            "n_eval_negatives": n_eval_negatives,
            "seed": seed,
            "candidates": candidates,
        },
        "candidates": {"form": form, "seed": seed, "n": n_eval_negatives},
        "prepare_version": PREPARE_VERSION,
        "has_times": has_time,
        "statistics": stats,
        "splits": {key: len(rec) for key, rec in records.items()},
    }
    return PreparedDataset(
        name=name,
        n_users=n_users,
        n_items=n_items,
        offsets=offsets,
        items=items,
        times=times,
        records=records,
        candidates=stored,
        user_ids=user_ids,
        item_ids=item_ids,
        card=card,
        candidate_stream=None if form == "stored" else (seed, n_eval_negatives),
    )
