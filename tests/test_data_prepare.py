"""prepare_interactions: filtering counts, ids, records against a plain-Python reference."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mgnm_pyg.data.prepare import prepare_interactions
from mgnm_pyg.errors import MGNMError


def _log(rows, with_rating=True, with_time=True):
    """rows: (user, item, rating, time); order is the row index."""
    return pl.DataFrame({
        "user": [r[0] for r in rows],
        "item": [r[1] for r in rows],
        "rating": [float(r[2]) if with_rating else None for r in rows],
        "time": [r[3] if with_time else None for r in rows],
        "order": list(range(len(rows))),
    }, schema={"user": pl.String, "item": pl.String, "rating": pl.Float64,
               "time": pl.Int64, "order": pl.Int64})


def _reference_records(rows, max_len):
    """Plain Python: sort each user's rows by (time, order); one record per position >= 1."""
    by_user = {}
    for order, (user, item, _, time) in enumerate(rows):
        by_user.setdefault(user, []).append((time, order, item))
    out = []
    for user in sorted(by_user):
        seq = [item for _, _, item in sorted(by_user[user])]
        for p in range(1, len(seq)):
            out.append((user, tuple(seq[max(0, p - max_len) : p]), seq[p]))
    return out


LOG = [
    ("bob", "x", 5, 30), ("amy", "y", 4, 10), ("bob", "z", 5, 10), ("amy", "x", 5, 20),
    ("bob", "x", 3, 20), ("amy", "w", 4, 20), ("bob", "y", 4, 40), ("amy", "z", 5, 5),
    ("bob", "w", 5, 50), ("cat", "z", 5, 1), ("cat", "y", 5, 2), ("cat", "x", 5, 2),
    ("dan", "v", 5, 1), ("dan", "u", 5, 2),
]


@pytest.mark.parametrize("max_len", [1, 2, 100])
def test_records_match_plain_python(max_len):
    ds = prepare_interactions(_log(LOG), name="t", n_eval_negatives=1, max_len=max_len)
    got = []
    for key in ("train", "valid", "test"):
        rec = ds.records[key]
        hist = ds.histories(rec.users, rec.positions, max_len)
        for u, h, t in zip(rec.users, hist, rec.targets, strict=True):
            got.append((ds.user_ids[u], tuple(ds.item_ids[i] for i in h if i != 0),
                        ds.item_ids[t]))
    assert sorted(got) == sorted(_reference_records(LOG, max_len))
    assert ds.card["statistics"]["records"] == len(LOG) - 4


def test_ids_sorted_and_sequences_in_time_order():
    ds = prepare_interactions(_log(LOG), name="t", n_eval_negatives=1)
    assert list(ds.user_ids) == ["amy", "bob", "cat", "dan"]
    assert list(ds.item_ids) == ["", "u", "v", "w", "x", "y", "z"]
    # amy: z@5, y@10, x@20 (order 3), w@20 (order 5)
    assert [ds.item_ids[i] for i in ds.sequence(0)] == ["z", "y", "x", "w"]
    assert np.all(np.diff(ds.times[ds.offsets[0] : ds.offsets[1]]) >= 0)
    # cat has two rows at time 2: file order breaks the tie.
    assert [ds.item_ids[i] for i in ds.sequence(2)] == ["z", "y", "x"]


def test_rating_filter_dedup_and_dropped_users_are_counted():
    rows = [
        ("a", "x", 5, 1), ("a", "x", 4, 1),  # duplicate (a, x, 1): second dropped
        ("a", "y", 2, 2),                   # rating 2 is not > 2
        ("a", "z", 3, 3), ("b", "x", 1, 1), ("b", "y", 5, 2), ("c", "x", 5, 1),
    ]
    ds = prepare_interactions(_log(rows), name="t", n_eval_negatives=1)
    stats = ds.card["statistics"]
    assert stats["rows_read"] == 7
    assert stats["rows_filtered_by_rating"] == 2
    assert stats["duplicates_dropped"] == 1
    assert stats["users_dropped"] == 2  # b and c keep one interaction each
    assert list(ds.user_ids) == ["a"]
    assert [ds.item_ids[i] for i in ds.sequence(0)] == ["x", "z"]


def test_duplicate_keeps_first_by_order_and_repeats_without_time_stay():
    rows = [("a", "x", 5, 7), ("a", "y", 5, 1), ("a", "x", 5, 7), ("a", "x", 5, 8)]
    ds = prepare_interactions(_log(rows), name="t", n_eval_negatives=1)
    assert ds.card["statistics"]["duplicates_dropped"] == 1
    assert ds.n_interactions == 3
    no_time = prepare_interactions(_log(rows, with_time=False), name="t", n_eval_negatives=1)
    assert no_time.times is None and no_time.records["train"].times is None
    assert no_time.card["statistics"]["duplicates_dropped"] == 0
    assert [no_time.item_ids[i] for i in no_time.sequence(0)] == ["x", "y", "x", "x"]


def test_user_who_saw_every_item_gets_no_evaluation_records():
    rows = [("a", i, 5, t) for t, i in enumerate("xyzxyzxyzx")]
    rows += [("b", "x", 5, 1), ("b", "y", 5, 2)]
    ds = prepare_interactions(_log(rows), name="t", n_eval_negatives=2)
    assert ds.card["statistics"]["eval_records_dropped_no_negatives"] == 3  # a: 1 valid, 2 test
    for key in ("valid", "test"):
        assert 0 not in ds.records[key].users
        assert ds.candidates[key].shape == (len(ds.records[key]), 2)


def test_no_ratings_keeps_everything():
    rows = [("a", "x", 0, 1), ("a", "y", 0, 2), ("b", "x", 0, 1), ("b", "z", 0, 3)]
    ds = prepare_interactions(_log(rows, with_rating=False), name="t", n_eval_negatives=1)
    assert ds.card["statistics"]["rows_filtered_by_rating"] == 0
    assert ds.n_interactions == 4


def test_k_core_iterates_to_a_fixed_point():
    # Items p and q are rare. Dropping them leaves user c with one row, which then
    # drops item w below 2: the filter must iterate.
    rows = [
        ("a", "x", 5, 1), ("a", "y", 5, 2), ("b", "x", 5, 1), ("b", "y", 5, 2),
        ("c", "p", 5, 1), ("c", "w", 5, 2), ("d", "w", 5, 1), ("d", "q", 5, 2),
    ]
    ds = prepare_interactions(_log(rows), name="t", n_eval_negatives=1, k_core=2)
    assert list(ds.user_ids) == ["a", "b"]
    assert list(ds.item_ids) == ["", "x", "y"]
    assert ds.card["statistics"]["rows_filtered_by_kcore"] == 4


def test_card_describes_options_and_sizes():
    source = {"path": "log.csv", "format": "csv", "sha256": "ab"}
    ds = prepare_interactions(_log(LOG), name="t", n_eval_negatives=1, source=source, seed=3)
    card = ds.card
    assert card["source"] == source
    assert card["options"]["seed"] == 3 and card["options"]["split"] == "per-user"
    assert card["statistics"]["users"] == 4 and card["statistics"]["items"] == 6
    assert card["statistics"]["interactions"] == len(LOG)
    assert card["statistics"]["max_sequence_length"] == 5
    assert card["statistics"]["median_sequence_length"] == 3.5
    assert sum(card["splits"].values()) == card["statistics"]["records"]


def test_nothing_left_is_a_clear_error():
    rows = [("a", "x", 1, 1), ("a", "y", 2, 2), ("b", "x", 5, 1)]
    with pytest.raises(MGNMError, match=r"log\.csv: nothing left after filtering"):
        prepare_interactions(_log(rows), name="t", source={"path": "log.csv"})


def test_partial_timestamps_and_missing_columns_are_refused():
    frame = _log(LOG).with_columns(
        pl.when(pl.col("order") == 3).then(None).otherwise(pl.col("time")).alias("time"))
    with pytest.raises(MGNMError, match="1 of 14 interactions have no timestamp"):
        prepare_interactions(frame, name="t")
    with pytest.raises(MGNMError, match="lacks column"):
        prepare_interactions(pl.DataFrame({"user": ["a"]}), name="t")


def test_global_time_without_times_names_option_and_source():
    frame = _log(LOG, with_time=False)
    with pytest.raises(MGNMError, match=r"global-time.*data\.txt"):
        prepare_interactions(frame, name="t", split="global-time",
                             source={"path": "data.txt"})


def test_candidate_form_option_keeps_the_candidates_and_picks_by_size(monkeypatch):
    from mgnm_pyg.data import prepare

    frame = _log(LOG)
    stored = prepare_interactions(frame, name="t", n_eval_negatives=2, candidates="stored")
    generated = prepare_interactions(frame, name="t", n_eval_negatives=2,
                                     candidates="generated")
    assert set(stored.candidates) == {"valid", "test"} and stored.candidate_stream is None
    assert generated.candidates == {} and generated.candidate_stream == (0, 2)
    assert generated.card["candidates"] == {"form": "generated", "seed": 0, "n": 2}
    for key in ("valid", "test"):
        rows = np.arange(len(stored.records[key]))
        assert np.array_equal(stored.evaluation_candidates(key, rows),
                              generated.evaluation_candidates(key, rows))
    # auto: stored up to the byte limit (4 bytes an entry), generated above it
    rows = len(stored.records["valid"]) + len(stored.records["test"])
    assert prepare_interactions(frame, name="t", n_eval_negatives=2).candidate_stream is None
    monkeypatch.setattr(prepare, "STORED_CANDIDATE_BYTES", 4 * rows * 2 - 1)
    auto = prepare_interactions(frame, name="t", n_eval_negatives=2)
    assert auto.candidate_stream == (0, 2) and auto.card["candidates"]["form"] == "generated"
    with pytest.raises(MGNMError, match="candidates must be one of auto, stored, generated"):
        prepare_interactions(frame, name="t", candidates="lazy")


def test_integer_ids_are_numbered_in_numeric_order():
    frame = pl.DataFrame({"user": [10, 10, 9, 9, 100, 100], "item": [30, 4, 4, 200, 30, 4]})
    ds = prepare_interactions(frame, name="n", n_eval_negatives=1)
    assert list(ds.user_ids) == ["9", "10", "100"]
    assert list(ds.item_ids) == ["", "4", "30", "200"]
    assert [ds.item_ids[i] for i in ds.sequence(1)] == ["30", "4"]
