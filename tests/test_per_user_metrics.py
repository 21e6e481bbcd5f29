"""The per-user pooled metric of the authors' code against a loop reference: all of a
user's rows pooled and sorted, the rank of the user's first positive (ties against it)."""

from __future__ import annotations

import math

import pytest
import torch
from test_evaluation import TableModel, make_dataset, reference_records

from mgnm_pyg.per_user_metrics import PerUserPooledAccumulator
from mgnm_pyg.training.evaluation import evaluate_split


def pooled_reference(model, ds, protocol, ks=(1, 5)):
    rows: dict[int, list[tuple[float, int]]] = {}
    for u, last, target, negs in reference_records(ds, protocol):
        rows.setdefault(u, []).append((model.reference(u, last, target), 1))
        rows[u] += [(model.reference(u, last, i), 0) for i in negs]
    sums = {f"per_user_pooled_{m}@{k}": 0.0 for m in ("hit", "ndcg", "mrr") for k in ks}
    for pooled in rows.values():
        # sorted by score, a negative tied with a positive first (ties against it)
        ordered = sorted(pooled, key=lambda row: (-row[0], row[1]))
        rank = 1 + [label for _, label in ordered].index(1)
        for k in ks:
            if rank <= k:
                sums[f"per_user_pooled_hit@{k}"] += 1
                sums[f"per_user_pooled_ndcg@{k}"] += 1 / math.log2(rank + 1)
                sums[f"per_user_pooled_mrr@{k}"] += 1 / rank
    out = {key: value / len(rows) for key, value in sums.items()}
    out["per_user_pooled_n_users"] = len(rows)
    return out


@pytest.mark.parametrize("protocol", ["sampled", "full"])
@pytest.mark.parametrize(("batch_size", "chunk"), [(64, 7), (1, 4096), (3, 5)])
def test_pooled_per_user_metric_matches_the_loop_reference(protocol, batch_size, chunk):
    ds = make_dataset(seed=1)
    model = TableModel(ds.n_users, ds.n_items, seed=2)
    got = evaluate_split(model, ds, "test", protocol, ks=(1, 5), batch_size=batch_size,
                         progress=False, item_chunk=chunk, per_user_pooled=True)
    expected = pooled_reference(model, ds, protocol)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    plain = evaluate_split(model, ds, "test", protocol, ks=(1, 5), progress=False,
                           item_chunk=chunk)
    assert {k: got[k] for k in plain} == plain  # reported beside, never mixed
    assert not any(k.startswith("per_user") for k in plain)


def test_accumulator_sums_a_users_records_and_merges_disjoint_states():
    acc = PerUserPooledAccumulator(ks=(1, 2))
    acc.update(torch.tensor([2, 2, 0]), torch.tensor([0, 1, 0]))
    acc.update(torch.tensor([2]), torch.tensor([1]))
    out = acc.compute()  # user 2: rank 3; user 0: rank 1
    assert out["per_user_pooled_n_users"] == 2
    assert out["per_user_pooled_hit@1"] == out["per_user_pooled_hit@2"] == 0.5
    other = PerUserPooledAccumulator(ks=(1, 2))
    other.update(torch.tensor([1]), torch.tensor([1]))
    merged = PerUserPooledAccumulator(ks=(1, 2))
    merged.load_state(acc.state() + torch.nn.functional.pad(other.state(), (0, 1)))
    assert merged.compute()["per_user_pooled_hit@2"] == pytest.approx(2 / 3)
