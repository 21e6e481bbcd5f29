"""Evaluation candidates: a pure function of (seed, split, record, the user's items)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mgnm_pyg.data.candidates import record_candidates, split_candidates
from mgnm_pyg.data.negatives import interaction_keys
from mgnm_pyg.data.store import load_dataset, save_dataset
from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.errors import MGNMError


@pytest.fixture(scope="module")
def pair():
    return (synthetic_dataset("tiny", candidates="stored"),
            synthetic_dataset("tiny", candidates="generated"))


def test_stored_and_generated_forms_give_identical_candidates(pair):
    stored, generated = pair
    assert stored.candidate_stream is None and generated.candidates == {}
    for key in ("valid", "test"):
        rows = np.arange(len(stored.records[key]))
        assert stored.candidate_width(key) == generated.candidate_width(key) == 50
        assert stored.candidate_rows(key) == generated.candidate_rows(key) == rows.size
        assert np.array_equal(stored.candidates[key], generated.evaluation_candidates(key, rows))
    assert generated.candidate_width("train") is None


def test_candidates_avoid_the_sequence_are_distinct_sorted_and_in_range(pair):
    ds = pair[1]
    for key in ("valid", "test"):
        rec = ds.records[key]
        cand = ds.evaluation_candidates(key, np.arange(len(rec)))
        assert cand.dtype == np.int64 and cand.min() >= 1 and cand.max() <= ds.n_items
        assert np.all(np.diff(cand, axis=1) > 0)  # ascending, hence distinct
        for user, row in zip(rec.users, cand, strict=True):
            assert not np.isin(row, ds.sequence(int(user))).any()


def test_a_records_candidates_do_not_depend_on_its_batch(pair):
    ds = pair[1]
    rows = np.arange(len(ds.records["test"]))
    whole = ds.evaluation_candidates("test", rows)
    shuffled = np.random.default_rng(3).permutation(rows)
    for batch in np.array_split(shuffled, 7):
        assert np.array_equal(ds.evaluation_candidates("test", batch), whole[batch])
    assert np.array_equal(ds.evaluation_candidates("test", rows[5:6]), whole[5:6])
    # other seed or split: other candidates
    keys, users = ds.interaction_keys, ds.records["test"].users
    again = record_candidates(keys, ds.n_items, 0, "test", rows, users, 50)
    assert np.array_equal(again, whole)
    assert not np.array_equal(record_candidates(keys, ds.n_items, 1, "test", rows, users, 50),
                              whole)
    assert not np.array_equal(record_candidates(keys, ds.n_items, 0, "valid", rows, users, 50),
                              whole)


def _keys(sequences, n_items):
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])])
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    return interaction_keys(offsets, items, n_items)


def test_candidates_are_uniform_over_the_allowed_items():
    n_items, n = 20, 5
    keys = _keys([[1, 2, 3, 4]], n_items)
    draws = record_candidates(keys, n_items, 0, "test", np.arange(8000), np.zeros(8000, int), n)
    counts = np.bincount(draws.reshape(-1), minlength=n_items + 1)
    assert counts[:5].sum() == 0
    expected = 8000 * n / 16  # 2500 per allowed item; binomial sd about 43
    assert np.all(np.abs(counts[5:] - expected) < 6 * 43)


def test_nearly_saturated_and_short_users_take_the_exact_fallback():
    n_items = 300
    # user 0 saw all but 3 items: fewer allowed than n, so a draw with replacement;
    # user 1 saw all but 12: enough items, but the stream rarely hits them
    sequences = [[i for i in range(1, 301) if i not in (7, 8, 9)],
                 [i for i in range(1, 301) if i % 25 != 0]]
    keys = _keys(sequences, n_items)
    users = np.array([0, 1, 0, 1])
    out = record_candidates(keys, n_items, 4, "valid", np.arange(4), users, 10)
    assert set(out[0]) <= {7, 8, 9} and set(out[2]) <= {7, 8, 9}
    assert np.all(np.diff(out[0]) >= 0)
    assert np.array_equal(np.sort(out[1]), out[1]) and len(set(out[1])) == 10
    assert set(out[1]) <= set(range(25, 301, 25))
    alone = record_candidates(keys, n_items, 4, "valid", np.array([1]), users[1:2], 10)
    assert np.array_equal(alone[0], out[1])
    full = _keys([list(range(1, 301))], n_items)
    with pytest.raises(MGNMError, match="interacted with all 300 items"):
        record_candidates(full, n_items, 0, "test", np.arange(1), np.zeros(1, int), 3)


def test_split_candidates_chunks_give_the_same_rows(pair):
    ds = pair[1]
    users = ds.records["valid"].users
    one = split_candidates(ds.interaction_keys, ds.n_items, 0, "valid", users, 50)
    many = split_candidates(ds.interaction_keys, ds.n_items, 0, "valid", users, 50, chunk=7)
    assert np.array_equal(one, many)


def test_generated_form_round_trips_without_candidate_files(pair, tmp_path):
    stored, generated = pair
    root = save_dataset(generated, tmp_path / "g")
    assert not list(root.glob("candidates_*.parquet"))
    back = load_dataset(root)
    assert back.candidate_stream == (0, 50)
    rows = np.arange(len(stored.records["test"]))
    assert np.array_equal(back.evaluation_candidates("test", rows), stored.candidates["test"])


def test_version_2_folders_still_load_their_stored_candidates(pair, tmp_path):
    stored = pair[0]
    root = save_dataset(stored, tmp_path / "v2")
    card = json.loads((root / "card.json").read_text())
    card["storage"]["format_version"] = 2
    for key in ("candidate_form",):
        card["storage"].pop(key)
    (root / "card.json").write_text(json.dumps(card))
    back = load_dataset(root)
    assert back.candidate_stream is None
    for key in ("valid", "test"):
        assert np.array_equal(back.candidates[key], stored.candidates[key])


class _ItemTable(torch.nn.Module):
    """Scores from a fixed random table indexed by (user, item): exact, ties possible."""

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.table = torch.randint(0, 50, (n_users, n_items + 1), generator=g).float()

    def encode(self, users, histories):
        return SimpleNamespace(interests=users.float().view(-1, 1, 1, 1))

    def score(self, interests, items):
        u = interests[:, 0, 0, 0].long()
        if items.dim() == 1:
            items = items.expand(len(u), -1)
        return self.table[u[:, None], items][:, None]

    def pool_levels(self, level_scores):
        return level_scores[:, 0]


def test_evaluation_gives_the_same_metrics_on_either_form(pair):
    from mgnm_pyg.training.evaluation import evaluate_split

    stored, generated = pair
    model = _ItemTable(stored.n_users, stored.n_items)
    for key in ("valid", "test"):
        a = evaluate_split(model, stored, key, ks=(5, 10), batch_size=17, progress=False)
        b = evaluate_split(model, generated, key, ks=(5, 10), batch_size=17, progress=False)
        assert a == b and a["n_records"] == len(stored.records[key])


def test_the_round_width_sets_only_the_speed(pair, monkeypatch):
    from mgnm_pyg.data import candidates

    ds = pair[1]
    rows = np.arange(len(ds.records["test"]))
    whole = ds.evaluation_candidates("test", rows)
    # a first round too short for any row: every row is finished in later rounds
    monkeypatch.setattr(candidates, "round_width", lambda n, n_items: n // 2)
    monkeypatch.setattr(candidates, "_ROUNDS", 10)
    assert np.array_equal(ds.evaluation_candidates("test", rows), whole)


def test_timed_evaluation_keeps_generated_candidates_generated():
    from mgnm_pyg.experiments.timing import EVAL_NEGATIVES, eval_dataset

    ds = synthetic_dataset("tiny", candidates="generated", n_eval_negatives=EVAL_NEGATIVES)
    timed, total = eval_dataset(ds, 30, seed=0)
    assert total == len(ds.records["test"]) and len(timed.records["test"]) < total
    assert "test" not in timed.candidates and timed.candidate_width("test") == EVAL_NEGATIVES
    rows = np.arange(len(timed.records["test"]))
    cand = timed.evaluation_candidates("test", rows)
    assert cand.shape == (rows.size, EVAL_NEGATIVES)  # 200 items: drawn with replacement
    for user, row in zip(timed.records["test"].users, cand, strict=True):
        assert not np.isin(row, ds.sequence(int(user))).any()
