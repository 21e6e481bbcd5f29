"""The real Amazon files in ../shared/datasets (skipped where they are absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from mgnm_pyg.data.prepare import prepare_interactions
from mgnm_pyg.data.readers import read_interactions

pytestmark = pytest.mark.realdata


def test_toys_sequences_prepare_to_published_counts(shared_datasets):
    path = shared_datasets / "Toys_and_Games.txt"
    df = read_interactions("sequences", path)
    assert df.height == 167_597
    # Small candidate draw: the counts do not depend on it, and the full draw is slow.
    ds = prepare_interactions(df, name="toys", split="leave-one-out", n_eval_negatives=5)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (19_412, 11_924, 167_597)
    # Sequences keep the file's order: user "1" is the first line, `1 1 2 3 4 5`.
    first = int(np.flatnonzero(ds.user_ids == "1")[0])
    assert list(ds.item_ids[ds.sequence(first)]) == ["1", "2", "3", "4", "5"]
    assert len(ds.records["test"]) == len(ds.records["valid"]) == 19_412


def test_musical_instruments_csv(shared_datasets):
    path = shared_datasets / "ratings_Musical_Instruments_partial.csv"
    df = read_interactions("amazon2014-csv", path)
    assert df.height == 5_050
    with open(path, newline="") as fh:
        reference = list(csv.reader(fh))
    assert df["user"].to_list() == [r[0] for r in reference]
    assert df["rating"].to_list() == [float(r[2]) for r in reference]
    assert df["time"].to_list() == [int(r[3]) for r in reference]
    low = sum(float(r[2]) <= 2.0 for r in reference)

    ds = prepare_interactions(df, name="mi", split="global-time", n_eval_negatives=5)
    assert ds.card["statistics"]["rows_filtered_by_rating"] == low
    assert ds.times is not None
    train, valid, test = (ds.records[k].times for k in ("train", "valid", "test"))
    assert train.max() <= valid.min() and valid.max() <= test.min()
    total = len(ds.records["train"]) + len(ds.records["valid"]) + len(ds.records["test"])
    dropped = ds.card["statistics"]["eval_records_dropped_no_train"]
    assert total + dropped == ds.n_interactions - ds.n_users
    # Roughly 7:1:2 of the records before users without training records are dropped.
    assert abs(len(ds.records["train"]) / (total + dropped) - 0.7) < 0.01
