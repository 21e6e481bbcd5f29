"""Synthetic interaction logs with planted multi-grained structure.

Items sit in a two-level hierarchy: ``n_top`` top categories, each with ``n_sub``
subcategories, each item in one subcategory, with a Zipf-like popularity inside it.
Each user has ``n_interests`` interest slots, each slot a subcategory, and a
Dirichlet preference over the slots. Every interaction picks a slot by that
preference and then an item of the slot's subcategory by popularity; with
probability ``noise`` it picks an item uniformly from the catalogue instead. With
probability ``drift`` the slot just picked first moves to a random sibling
subcategory (same top category), which models interests that drift over time.
Timestamps are integers that increase along each user's sequence.

Everything is vectorised (the big presets generate millions of rows in seconds):
because a drifted slot's new subcategory depends only on the slot's top category,
a slot's current subcategory is the value of its latest drift event, a grouped
forward fill.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from mgnm_pyg.data.dataset import PreparedDataset
from mgnm_pyg.data.prepare import prepare_interactions
from mgnm_pyg.errors import MGNMError

_BASE: dict[str, Any] = {
    "n_top": 8,
    "n_sub": 4,
    "n_interests": 3,
    "min_len": 3,
    "length_sigma": 0.6,
    "drift": 0.03,
    "noise": 0.05,
    "zipf": 1.0,
    "n_eval_negatives": 100,
}

# Paper scales (SPEC Table 1) for runtime benchmarks; `tiny` for tests, `demo` for
# the README job (about 24k training records, 95 batches of 256 per epoch).
# The big presets keep 100 evaluation negatives per record, not the paper's 1000, so
# the results measured on them stay comparable; override n_eval_negatives=1000 for the
# paper's protocol (large ones are then generated per batch, not stored).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**_BASE, "n_users": 150, "n_items": 200, "n_interactions": 1500,
             "n_top": 4, "n_sub": 3, "n_eval_negatives": 50},
    "demo": {**_BASE, "n_users": 1500, "n_items": 1200, "n_interactions": 36000},
    "musical-instruments": {**_BASE, "n_users": 60739, "n_items": 56301,
                            "n_interactions": 946627, "n_top": 20, "n_sub": 10,
                            "n_eval_negatives": 100},
    "toys": {**_BASE, "n_users": 313557, "n_items": 241657, "n_interactions": 6212901,
             "n_top": 30, "n_sub": 12, "n_eval_negatives": 100},
    "micro-video": {**_BASE, "n_users": 60813, "n_items": 292286,
                    "n_interactions": 14952659, "n_top": 30, "n_sub": 12,
                    "n_interests": 4, "n_eval_negatives": 100},
}


def _sequence_lengths(rng: np.random.Generator, n_users: int, total: int, min_len: int,
                      sigma: float) -> np.ndarray:
    """Log-normal-shaped lengths, each >= ``min_len``, summing to exactly ``total``."""
    extra = total - n_users * min_len
    if extra < 0:
        raise MGNMError(f"n_interactions={total} is below n_users * min_len = {n_users * min_len}")
    weight = rng.lognormal(0.0, sigma, size=n_users)
    share = weight / weight.sum() * extra
    lengths = min_len + np.floor(share).astype(np.int64)
    rest = total - int(lengths.sum())
    lengths[rng.choice(n_users, size=rest, replace=False)] += 1
    return lengths


# Logs longer than this are generated in chunks of users, so the per-event temporaries
# exist for one chunk at a time. A single chunk makes exactly the draws of an unchunked
# run, so the small presets (and results measured on them) do not change.
CHUNK_EVENTS = 2_000_000


def _chunks(lengths: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """User ranges ``[lo, hi)`` of about ``limit`` events each (one range if all fit)."""
    total = int(lengths.sum())
    if total <= limit:
        return [(0, lengths.shape[0])]
    ends = np.cumsum(lengths)
    cuts = np.searchsorted(ends, np.arange(limit, total, limit), side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, lengths.shape[0]),
                                       [lengths.shape[0]]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def generate_interactions(
    n_users: int, n_items: int, n_interactions: int, seed: int = 0,
    chunk_events: float = CHUNK_EVENTS, **options: Any
) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """Generate a log; returns it and the planted truth.

    The log has the readers' columns, except that ``user`` and ``item`` are the integer
    indices rather than strings; :func:`prepare_interactions` accepts both.

    The truth holds ``item_sub`` (subcategory of each raw item index), ``sub_top``
    (top category of each subcategory), ``user_interest_start`` ([n_users, K] slot
    subcategories at the start) and ``event_sub`` (the subcategory each row was drawn
    from; -1 for noise rows).

    Args:
        chunk_events: logs of more events are generated in chunks of whole users of
            about this many events (same generator, drawn chunk after chunk), straight
            into preallocated columns; a log that fits one chunk is drawn as a whole.

    Shapes:
        log columns ``[n_interactions]``: ``user``, ``item`` (``Int32`` when chunked,
        else ``Int64``), ``rating`` (null), ``time``, ``order`` (``Int64``).
    """
    opt = {**_BASE, **options}
    rng = np.random.default_rng(seed)
    n_top, n_sub, k = int(opt["n_top"]), int(opt["n_sub"]), int(opt["n_interests"])
    n_subcats = n_top * n_sub
    if n_items < n_subcats:
        raise MGNMError(f"n_items={n_items} is below the {n_subcats} subcategories")

    # Items: every subcategory gets at least one item, the rest at random.
    spread = rng.integers(0, n_subcats, n_items - n_subcats)
    item_sub = np.concatenate([np.arange(n_subcats), spread])
    item_sub = rng.permutation(item_sub)
    sub_top = np.arange(n_subcats) // n_sub
    by_sub = np.argsort(item_sub, kind="stable")
    sub_count = np.bincount(item_sub, minlength=n_subcats)
    sub_start = np.concatenate([[0], np.cumsum(sub_count)[:-1]])
    rank_in_sub = np.arange(n_items) - sub_start[item_sub[by_sub]]
    popularity = 1.0 / (1.0 + rank_in_sub) ** float(opt["zipf"])
    cum = np.cumsum(popularity)
    sub_total = np.bincount(item_sub[by_sub], weights=popularity, minlength=n_subcats)
    sub_cum_start = np.concatenate([[0.0], np.cumsum(sub_total)[:-1]])
    items_table = (by_sub, cum, sub_total, sub_cum_start)

    # Users: K interest slots and a preference over them.
    start = rng.integers(0, n_subcats, size=(n_users, k))
    preference = np.cumsum(rng.dirichlet(np.ones(k), size=n_users), axis=1)
    lengths = _sequence_lengths(rng, n_users, n_interactions, int(opt["min_len"]),
                                float(opt["length_sigma"]))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    chunks = _chunks(lengths, chunk_events)
    id_type = np.int64 if len(chunks) == 1 else np.int32
    user = np.empty(n_interactions, dtype=id_type)
    item = np.empty(n_interactions, dtype=id_type)
    time = np.empty(n_interactions, dtype=np.int64)
    event_sub = np.empty(n_interactions, dtype=np.int64 if len(chunks) == 1 else np.int32)
    for lo, hi in chunks:
        at = slice(int(offsets[lo]), int(offsets[hi]))
        user[at], item[at], time[at], event_sub[at] = _chunk_events(
            rng, lo, lengths[lo:hi], start[lo:hi], preference[lo:hi], sub_top, n_sub,
            n_items, items_table, opt)

    # Integer raw ids: formatting millions of strings would dominate the run time.
    frame = pl.DataFrame({
        "user": user,
        "item": item,
        "rating": pl.repeat(None, n_interactions, dtype=pl.Float64, eager=True),
        "time": time,
        "order": np.arange(n_interactions, dtype=np.int64),
    })
    truth = {"item_sub": item_sub, "sub_top": sub_top, "user_interest_start": start,
             "event_sub": event_sub}
    return frame, truth


def _chunk_events(rng, first_user, lengths, start, preference, sub_top, n_sub, n_items,
                  items_table, opt):
    """Events of users ``first_user, first_user + 1, ...``: ``(user, item, time, event_sub)``.

    The draws come in a fixed order (slot, drift, drifted subcategory, item, noise,
    noise item, then the users' time origin and spread, then the gaps), so one chunk of
    all users makes the same draws as the unchunked generator did.
    """
    by_sub, cum, sub_total, sub_cum_start = items_table
    n_users, k = start.shape
    n = int(lengths.sum())
    local = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    slot = (rng.random(n)[:, None] > preference[local]).sum(1)
    slot = np.minimum(slot, k - 1)

    # Drift: the slot's subcategory is the one set by its latest drift event.
    drifts = rng.random(n) < float(opt["drift"])
    start_sub = start[local, slot]
    new_sub = sub_top[start_sub] * n_sub + rng.integers(0, n_sub, n)
    group = local * k + slot
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    first = np.ones(n, dtype=bool)
    first[1:] = g_sorted[1:] != g_sorted[:-1]
    value = np.where(drifts[order], new_sub[order], start_sub[order])
    is_set = first | drifts[order]
    last = np.maximum.accumulate(np.where(is_set, np.arange(n), 0))
    event_sub = np.empty(n, dtype=np.int64)
    event_sub[order] = value[last]
    del slot, drifts, new_sub, group, order, g_sorted, first, value, is_set, last, start_sub

    # Items by popularity inside the subcategory, or uniform noise.
    u = sub_cum_start[event_sub] + rng.random(n) * sub_total[event_sub]
    pick = np.minimum(np.searchsorted(cum, u, side="right"), n_items - 1)
    item = by_sub[pick]
    del u, pick
    noisy = rng.random(n) < float(opt["noise"])
    item = np.where(noisy, rng.integers(0, n_items, n), item)
    event_sub = np.where(noisy, -1, event_sub)

    # Strictly increasing timestamps per user. Users start anywhere in the first half
    # of a common horizon and spread their sequence over much of the rest, so their
    # activity overlaps in time (which a global-time split needs).
    horizon = 10**8
    begin = rng.integers(0, horizon // 2, n_users)
    scale = (horizon - begin) * rng.uniform(0.3, 1.0, n_users) / lengths
    step = 1 + np.floor(rng.exponential(1.0, n) * scale[local]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    run = np.cumsum(step)
    before_user = np.repeat(run[offsets[:-1]] - step[offsets[:-1]], lengths)
    time = 1_000_000_000 + begin[local] + run - before_user
    return local + first_user, item, time, event_sub


def synthetic_dataset(preset: str = "demo", seed: int = 0, **overrides: Any) -> PreparedDataset:
    """Generate a preset's log and prepare it (per-user split, evaluation candidates).

    Args:
        preset: a key of :data:`PRESETS`.
        seed: seeds both the generator and the candidate draw.
        **overrides: any generator option (``n_users``, ``n_items``,
            ``n_interactions``, ``n_top``, ``n_sub``, ``n_interests``, ``drift``,
            ``noise``, ...) or preparation option (``split``, ``max_len``,
            ``n_eval_negatives``, ``candidates``).
    """
    if preset not in PRESETS:
        raise MGNMError(f"unknown synthetic preset {preset!r}; choose one of {', '.join(PRESETS)}")
    opt = {**PRESETS[preset], **overrides}
    prep = {key: opt.pop(key) for key in ("split", "max_len", "n_eval_negatives", "candidates")
            if key in opt}
    frame, _ = generate_interactions(seed=seed, **opt)
    dataset = prepare_interactions(frame, name=f"synthetic-{preset}", seed=seed,
                                   source={"format": "synthetic", "preset": preset,
                                           "seed": seed, "generator": opt}, **prep)
    # Readable raw ids, zero-padded so that their string order is the numeric order
    # the ids were assigned in: user 3 of 150 is "u003", item 1 of 200 is "i001".
    dataset.user_ids = _label("u", dataset.user_ids, int(opt["n_users"]))
    dataset.item_ids = np.concatenate(
        [dataset.item_ids[:1], _label("i", dataset.item_ids[1:], int(opt["n_items"]))])
    return dataset


def _label(prefix: str, ids: np.ndarray, count: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(ids.astype(str), len(str(count - 1))))
