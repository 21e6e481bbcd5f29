"""Prepared datasets on disk: exact round trip, atomic writes, clear errors, cache."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from mgnm_pyg.data import store
from mgnm_pyg.data.prepare import prepare_interactions
from mgnm_pyg.data.store import (
    load_dataset,
    prepare_cached,
    resolve_dataset,
    save_dataset,
)
from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.errors import MGNMError


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset("tiny")


def _assert_same(a, b):
    assert (a.name, a.n_users, a.n_items) == (b.name, b.n_users, b.n_items)
    for attr in ("offsets", "items", "user_ids", "item_ids"):
        x, y = getattr(a, attr), getattr(b, attr)
        assert x.dtype.kind == y.dtype.kind and np.array_equal(x, y), attr
    assert (a.times is None) == (b.times is None)
    if a.times is not None:
        assert np.array_equal(a.times, b.times)
    for key in ("train", "valid", "test"):
        ra, rb = a.records[key], b.records[key]
        for attr in ("users", "positions", "targets"):
            assert np.array_equal(getattr(ra, attr), getattr(rb, attr))
        assert (ra.times is None) == (rb.times is None)
        if ra.times is not None:
            assert np.array_equal(ra.times, rb.times)
    for key in ("valid", "test"):
        assert a.candidates[key].dtype == b.candidates[key].dtype == np.int64
        assert np.array_equal(a.candidates[key], b.candidates[key])
    assert a.card == b.card


def test_round_trip_is_exact(tiny, tmp_path):
    save_dataset(tiny, tmp_path / "tiny")
    _assert_same(tiny, load_dataset(tmp_path / "tiny"))


def test_round_trip_without_times_and_without_candidates(tmp_path):
    frame = pl.DataFrame({"user": list("aaabbb"), "item": list("xyzxzq")})
    ds = prepare_interactions(frame, name="nt", n_eval_negatives=0)
    assert ds.times is None
    save_dataset(ds, tmp_path / "nt")
    _assert_same(ds, load_dataset(tmp_path / "nt"))


def test_failed_write_leaves_nothing_and_keeps_old_version(tiny, tmp_path, monkeypatch):
    real = pl.DataFrame.write_parquet
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(tiny, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # no half folder, no temporary left behind

    monkeypatch.setattr(pl.DataFrame, "write_parquet", real)
    save_dataset(tiny, tmp_path / "old")
    before = {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()}
    calls["n"] = 0
    monkeypatch.setattr(pl.DataFrame, "write_parquet", failing)
    with pytest.raises(OSError):
        save_dataset(synthetic_dataset("tiny", seed=1), tmp_path / "old")
    assert {p.name: p.read_bytes() for p in (tmp_path / "old").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["old"]


def test_corrupt_folders_give_clear_errors(tiny, tmp_path):
    with pytest.raises(MGNMError, match="no such folder"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MGNMError, match=r"not a prepared dataset: card\.json is missing"):
        load_dataset(tmp_path / "empty")

    root = save_dataset(tiny, tmp_path / "d")
    data = (root / "records_test.parquet").read_bytes()
    (root / "records_test.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(MGNMError, match=r"records_test\.parquet: not a readable Parquet"):
        load_dataset(root)

    root = save_dataset(tiny, tmp_path / "e")
    pl.DataFrame({"user": ["a"], "item": [1]}).write_parquet(root / "sequences.parquet")
    with pytest.raises(MGNMError, match=r"sequences\.parquet: expected columns user: Int64"):
        load_dataset(root)

    root = save_dataset(tiny, tmp_path / "f")
    (root / "candidates_valid.parquet").unlink()
    with pytest.raises(MGNMError, match=r"candidates_valid\.parquet: file missing"):
        load_dataset(root)

    root = save_dataset(tiny, tmp_path / "c")
    schema = pl.read_parquet_schema(root / "candidates_test.parquet")
    assert schema["candidates"] == pl.Array(pl.Int32, tiny.candidates["test"].shape[1])
    bad = tiny.candidates["test"].astype(np.int32)
    bad[0, 0] = tiny.n_items + 1
    pl.DataFrame([pl.Series("candidates", bad)]).write_parquet(root / "candidates_test.parquet")
    with pytest.raises(MGNMError, match=r"candidates_test\.parquet: candidate items must be"):
        load_dataset(root)

    root = save_dataset(tiny, tmp_path / "g")
    (root / "card.json").write_text("{not json")
    with pytest.raises(MGNMError, match=r"card\.json: not valid JSON"):
        load_dataset(root)
    (root / "card.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(MGNMError, match="not a prepared dataset card"):
        load_dataset(root)


def test_resolve_by_name_path_and_synthetic(tiny, tmp_path):
    save_dataset(tiny, store.data_dir() / "mine")
    _assert_same(tiny, resolve_dataset("mine"))
    _assert_same(tiny, resolve_dataset(str(store.data_dir() / "mine")))
    other = tmp_path / "elsewhere"
    save_dataset(tiny, other)
    _assert_same(tiny, resolve_dataset(str(other)))
    _assert_same(tiny, resolve_dataset("elsewhere", data_dir=tmp_path))
    assert resolve_dataset("synthetic:tiny", seed=0).n_users == tiny.n_users
    with pytest.raises(MGNMError, match=r"unknown dataset 'nope'.*prepared: mine.*synthetic:demo"):
        resolve_dataset("nope")
    with pytest.raises(MGNMError, match="unknown synthetic preset 'huge'"):
        resolve_dataset("synthetic:huge")


def test_prepare_cached_reuses_unchanged_inputs(tmp_path):
    raw = tmp_path / "log.csv"
    raw.write_text("a,x\na,y\nb,x\nb,z\n")
    loads = {"n": 0}

    def load():
        loads["n"] += 1
        return pl.read_csv(raw, has_header=False, new_columns=["user", "item"])

    opts = {"n_eval_negatives": 1, "split": "per-user"}
    ds, reused = prepare_cached(load, name="log", source_path=raw, source_format="csv", **opts)
    assert not reused and loads["n"] == 1
    assert ds.card["source"]["sha256"] == store.file_sha256(raw)
    again, reused = prepare_cached(load, name="log", source_path=raw, source_format="csv", **opts)
    assert reused and loads["n"] == 1
    _assert_same(ds, again)
    _, reused = prepare_cached(load, name="log", source_path=raw, source_format="csv",
                               n_eval_negatives=1, split="leave-one-out")
    assert not reused and loads["n"] == 2
    raw.write_text("a,x\na,y\nb,x\nb,w\n")
    changed, reused = prepare_cached(load, name="log", source_path=raw, source_format="csv",
                                     n_eval_negatives=1, split="leave-one-out")
    assert not reused and "w" in changed.item_ids
    assert store.list_datasets() == ["log"]


def test_cache_key_folds_in_reader_options_only_when_given():
    key = store.cache_key("abc", "table", {"seed": 0})
    assert store.cache_key("abc", "table", {"seed": 0}, {}) == key
    with_columns = store.cache_key("abc", "table", {"seed": 0}, {"time_col": "t1"})
    assert with_columns != key
    assert with_columns != store.cache_key("abc", "table", {"seed": 0}, {"time_col": "t2"})
