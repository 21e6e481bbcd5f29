"""Synthetic data: determinism, sizes, speed, and the planted structure."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from mgnm_pyg.data.synthetic import PRESETS, generate_interactions, synthetic_dataset
from mgnm_pyg.errors import MGNMError


def _tiny_log(seed=0, **extra):
    opts = {k: v for k, v in PRESETS["tiny"].items() if k != "n_eval_negatives"}
    return generate_interactions(seed=seed, **{**opts, **extra})


def test_generator_is_deterministic_per_seed():
    a, ta = _tiny_log(0)
    b, tb = _tiny_log(0)
    c, _ = _tiny_log(1)
    assert a.equals(b) and np.array_equal(ta["event_sub"], tb["event_sub"])
    assert not a.equals(c)


def test_sizes_and_timestamps():
    frame, truth = _tiny_log(0)
    assert frame.height == PRESETS["tiny"]["n_interactions"]
    assert frame["user"].n_unique() == PRESETS["tiny"]["n_users"]
    assert frame["item"].max() < PRESETS["tiny"]["n_items"]
    users, times = frame["user"].to_numpy(), frame["time"].to_numpy()
    same_user = users[1:] == users[:-1]
    assert np.all(times[1:][same_user] > times[:-1][same_user])
    assert frame.group_by("user").len()["len"].min() >= PRESETS["tiny"]["min_len"]
    # Every subcategory has items; subcategories nest in top categories.
    n_sub = PRESETS["tiny"]["n_top"] * PRESETS["tiny"]["n_sub"]
    assert np.array_equal(np.unique(truth["item_sub"]), np.arange(n_sub))


def test_paper_scale_presets_match_table_1():
    table1 = {"micro-video": (60813, 292286, 14952659),
              "musical-instruments": (60739, 56301, 946627),
              "toys": (313557, 241657, 6212901)}
    for name, sizes in table1.items():
        p = PRESETS[name]
        assert (p["n_users"], p["n_items"], p["n_interactions"]) == sizes


def test_tiny_prepares_deterministically():
    # Its speed (about 0.1 s) is a benchmark matter, not asserted here.
    ds = synthetic_dataset("tiny")
    again = synthetic_dataset("tiny")
    assert np.array_equal(ds.items, again.items)
    assert np.array_equal(ds.candidates["test"], again.candidates["test"])
    assert ds.card["options"]["split"] == "per-user"
    assert ds.card["source"]["preset"] == "tiny"
    assert min(len(ds.records[k]) for k in ("train", "valid", "test")) > 0


def test_targets_follow_planted_interests():
    frame, truth = _tiny_log(0)
    user, item = frame["user"].to_numpy(), frame["item"].to_numpy()
    sub, start = truth["item_sub"][item], truth["user_interest_start"]
    inside = (start[user] == sub[:, None]).any(axis=1).mean()
    chance = np.mean([np.isin(truth["item_sub"], s).mean() for s in start])
    assert inside > 2.5 * chance  # ~0.9 against ~0.25
    # Drift moves interests only to sibling subcategories (same top category).
    drawn = truth["event_sub"] >= 0
    top_now = truth["sub_top"][truth["event_sub"][drawn]]
    top_start = truth["sub_top"][start[user[drawn]]]
    assert (top_start == top_now[:, None]).any(axis=1).all()
    assert not (start[user[drawn]] == truth["event_sub"][drawn][:, None]).any(axis=1).all()


def test_prepared_test_targets_share_subcategories_with_history():
    ds = synthetic_dataset("tiny")
    _, truth = _tiny_log(0)
    assert ds.user_ids[3] == "u003" and ds.item_ids[1] == "i000"
    raw = np.char.lstrip(ds.item_ids[1:], "i").astype(np.int64)
    item_sub = np.concatenate([[-1], truth["item_sub"][raw]])
    rec = ds.records["test"]
    hist = ds.histories(rec.users, rec.positions, 100)
    same = (item_sub[hist] == item_sub[rec.targets][:, None]) & (hist != 0)
    hit = same.any(axis=1).mean()
    # Chance: how often a uniform item's subcategory appears in the history.
    share = np.array([np.isin(item_sub[1:], item_sub[h[h != 0]]).mean() for h in hist])
    assert hit > 2.5 * share.mean()  # ~0.92 against ~0.24


def test_unknown_preset_and_bad_sizes_are_refused():
    with pytest.raises(MGNMError, match="unknown synthetic preset"):
        synthetic_dataset("huge")
    with pytest.raises(MGNMError, match="below"):
        generate_interactions(n_users=10, n_items=5, n_interactions=100)


def _log_digest(frame, truth) -> str:
    import hashlib

    digest = hashlib.sha256()
    for column in ("user", "item", "time", "order"):
        digest.update(frame[column].to_numpy().astype(np.int64).tobytes())
    digest.update(truth["event_sub"].astype(np.int64).tobytes())
    return digest.hexdigest()


# Digests of the tiny and demo logs (seed 0) as the unchunked generator made them:
# chunking large logs must not change the small presets that results were measured on.
_DIGESTS = {
    "tiny": "39cfa8fd2cf40ca9ffce6e304eabb71a8e659b33620d09f94aadb9622a13cb5a",
    "demo": "877369f011d7de253c5a187b5cef899cb51d0cbce74baef9b761869232948b95",
}


@pytest.mark.parametrize("preset", ["tiny", "demo"])
def test_small_presets_are_unchanged(preset):
    opts = {k: v for k, v in PRESETS[preset].items() if k != "n_eval_negatives"}
    assert _log_digest(*generate_interactions(seed=0, **opts)) == _DIGESTS[preset]


def test_chunked_generation_yields_a_valid_log():
    p = PRESETS["tiny"]
    frame, truth = _tiny_log(0, chunk_events=100)  # 1500 events: about 15 chunks
    whole, _ = _tiny_log(0)
    assert frame["user"].dtype == frame["item"].dtype == pl.Int32
    assert frame.height == p["n_interactions"]
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    times = frame["time"].to_numpy()
    # same users and sequence lengths (drawn before the chunks), other events
    assert np.array_equal(users, whole["user"].to_numpy())
    assert not np.array_equal(items, whole["item"].to_numpy())
    assert np.all(np.diff(users) >= 0) and users.max() == p["n_users"] - 1
    same_user = users[1:] == users[:-1]
    assert np.all(times[1:][same_user] > times[:-1][same_user])
    assert items.min() >= 0 and items.max() < p["n_items"]
    assert np.array_equal(frame["order"].to_numpy(), np.arange(frame.height))
    drawn = truth["event_sub"] >= 0
    assert np.array_equal(truth["item_sub"][items[drawn]], truth["event_sub"][drawn])
    assert 0.8 < drawn.mean() < 1.0  # noise 0.05
