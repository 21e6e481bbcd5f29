"""evaluate_split against a brute-force reference computed with plain Python loops."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mgnm_pyg.data.dataset import PreparedDataset, Records
from mgnm_pyg.errors import MGNMError
from mgnm_pyg.training.evaluation import evaluate_split, user_groups

N_NEG = 20


def make_dataset(seed: int = 0, n_users: int = 12, n_items: int = 40) -> PreparedDataset:
    """Random sequences (with repeated items); the last 1-5 positions of each user are
    test records, with persisted negatives outside the user's sequence."""
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(1, n_items + 1, size=rng.integers(3, 15)) for _ in range(n_users)]
    seqs[0] = np.array([3, 5, 3, 7, 3, 9, 9])  # targets that also occur earlier
    offsets = np.r_[0, np.cumsum([len(s) for s in seqs])].astype(np.int64)
    users, positions = [], []
    for u, s in enumerate(seqs):
        n_test = min(len(s) - 1, int(rng.integers(1, 6)))
        for p in range(len(s) - n_test, len(s)):
            users.append(u)
            positions.append(p)
    users, positions = np.array(users), np.array(positions)
    items = np.concatenate(seqs).astype(np.int64)
    test = Records(users, positions, items[offsets[users] + positions])
    cands = np.stack(
        [
            rng.choice(np.setdiff1d(np.arange(1, n_items + 1), seqs[u]), N_NEG, replace=False)
            for u in users
        ]
    ).astype(np.int64)
    empty = Records(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
    return PreparedDataset(
        name="toy", n_users=n_users, n_items=n_items, offsets=offsets, items=items, times=None,
        records={"train": empty, "valid": empty, "test": test},
        candidates={"valid": np.zeros((0, N_NEG), dtype=np.int64), "test": cands},
        user_ids=np.array([str(u) for u in range(n_users)]),
        item_ids=np.array([""] + [str(i) for i in range(1, n_items + 1)]),
    )


class TableModel(torch.nn.Module):
    """Scores from integer tables, so ties are common and results exact:
    level 0 = user[u, i] + last[h, i] (h = last history item), level 1 = other[u, i]."""

    def __init__(self, n_users: int, n_items: int, seed: int = 0, high: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.user = torch.randint(0, high, (n_users, n_items + 1), generator=g).float()
        self.last = torch.randint(0, 2, (n_items + 1, n_items + 1), generator=g).float()
        self.other = torch.randint(0, high + 1, (n_users, n_items + 1), generator=g).float()
        self.widths: list[tuple[int, int]] = []

    def encode(self, users, histories):
        assert not self.training
        lengths = (histories != 0).sum(1)
        self.widths.append((histories.shape[1], int(lengths.max())))
        last = histories[torch.arange(len(users)), lengths - 1]
        return SimpleNamespace(interests=torch.stack([users, last], 1).float().view(-1, 1, 1, 2))

    def score(self, interests, items):
        u, h = interests[:, 0, 0, 0].long(), interests[:, 0, 0, 1].long()
        if items.dim() == 1:
            items = items.expand(len(u), -1)
        level0 = self.user[u[:, None], items] + self.last[h[:, None], items]
        return torch.stack([level0, self.other[u[:, None], items]], 1)

    def pool_levels(self, level_scores):
        return level_scores.max(1).values

    def reference(self, u: int, history_last: int, item: int) -> float:
        return max(
            float(self.user[u, item] + self.last[history_last, item]), float(self.other[u, item])
        )


def reference_records(ds: PreparedDataset, protocol: str):
    """Each test record as ``(user, last history item, target, negatives)``, by plain loops:
    the persisted candidates (sampled) or every item outside the history (full)."""
    test = ds.records["test"]
    for r in range(len(test)):
        u, p, target = int(test.users[r]), int(test.positions[r]), int(test.targets[r])
        seq = ds.sequence(u)
        if protocol == "sampled":
            negs = [int(i) for i in ds.candidates["test"][r]]
        else:
            seen = {int(i) for i in seq[:p]}
            negs = [i for i in range(1, ds.n_items + 1) if i not in seen and i != target]
        yield u, int(seq[p - 1]), target, negs


def brute_force(model, ds: PreparedDataset, protocol: str, ks=(1, 5)) -> dict[str, float]:
    """Plain loops: each record's rank, and GAUC over each user's pooled rows."""
    test = ds.records["test"]
    sums = {f"{m}@{k}": 0.0 for m in ("hit", "ndcg", "mrr") for k in ks}
    rows: dict[int, tuple[list[float], list[int]]] = {}
    for u, last, target, negs in reference_records(ds, protocol):
        pos = model.reference(u, last, target)
        neg_scores = [model.reference(u, last, i) for i in negs]
        rank = 1 + sum(s >= pos for s in neg_scores)
        for k in ks:
            if rank <= k:
                sums[f"hit@{k}"] += 1
                sums[f"ndcg@{k}"] += 1 / np.log2(rank + 1)
                sums[f"mrr@{k}"] += 1 / rank
        scores, labels = rows.setdefault(u, ([], []))
        scores += [pos, *neg_scores]
        labels += [1] + [0] * len(neg_scores)
    out = {key: value / len(test) for key, value in sums.items()}
    num = sum(len(s) * roc_auc_score(lab, s) for s, lab in rows.values())
    out["gauc"] = num / sum(len(s) for s, _ in rows.values())
    out["n_records"] = len(test)
    out["n_users_gauc"] = len(rows)
    return out


@pytest.fixture(scope="module")
def toy():
    ds = make_dataset()
    return ds, TableModel(ds.n_users, ds.n_items)


@pytest.mark.parametrize("protocol", ["sampled", "full"])
def test_matches_brute_force(toy, protocol):
    ds, model = toy
    got = evaluate_split(model, ds, "test", protocol, ks=(1, 5), batch_size=64,
                         progress=False, item_chunk=7)
    expected = brute_force(model, ds, protocol)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


@pytest.mark.parametrize("protocol", ["sampled", "full"])
def test_result_does_not_depend_on_batching(toy, protocol):
    ds, model = toy
    runs = [
        evaluate_split(model, ds, protocol=protocol, ks=(1, 5), batch_size=bs,
                       progress=False, item_chunk=chunk, per_user_best=True)
        for bs, chunk in [(1, 4096), (3, 5), (64, 13)]
    ]
    assert runs[0] == runs[1] == runs[2]


def test_histories_are_trimmed_to_the_batch_and_max_len(toy):
    ds, model = toy
    model.widths.clear()
    evaluate_split(model, ds, batch_size=5, max_len=4, progress=False)
    assert model.widths and all(width == longest <= 4 for width, longest in model.widths)


def test_full_protocol_excludes_history_but_keeps_a_repeated_target():
    ds = make_dataset(seed=3)
    model = TableModel(ds.n_users, ds.n_items)
    model.user.zero_()
    model.last.zero_()
    model.other.zero_()
    # every item a user ever saw scores 10; all other items 0
    for u in range(ds.n_users):
        model.user[u, torch.from_numpy(ds.sequence(u))] = 10.0
    # keep only each user's last record, whose later items do not exist
    test = ds.records["test"]
    last = np.flatnonzero(test.positions == np.diff(ds.offsets)[test.users] - 1)
    ds.records["test"] = test.subset(last)
    ds.candidates["test"] = ds.candidates["test"][last]
    assert 0 in ds.records["test"].users  # user 0's target (9) also occurs earlier
    out = evaluate_split(model, ds, protocol="full", ks=(1,), progress=False, item_chunk=6)
    # without the exclusion, the history items would tie with the positive
    assert out["hit@1"] == 1.0 and out["gauc"] == 1.0


@pytest.mark.parametrize("protocol", ["sampled", "full"])
def test_constant_scorer_earns_nothing(toy, protocol):
    ds, _ = toy
    model = TableModel(ds.n_users, ds.n_items)
    for table in (model.user, model.last, model.other):
        table.fill_(2.0)
    out = evaluate_split(model, ds, protocol=protocol, ks=(5,), progress=False)
    assert out["hit@5"] == out["ndcg@5"] == out["mrr@5"] == 0.0
    assert out["gauc"] == 0.5


def test_per_user_best_is_separate_and_optional(toy):
    ds, model = toy
    plain = evaluate_split(model, ds, progress=False)
    both = evaluate_split(model, ds, progress=False, per_user_best=True)
    assert not any(k.startswith("per_user_best") for k in plain)
    assert {k: both[k] for k in plain} == plain
    assert both["per_user_best_n_users"] == ds.n_users
    assert both["per_user_best_hit@5"] >= plain["hit@5"]


def test_restores_training_mode_and_rejects_bad_arguments(toy):
    ds, model = toy
    model.train()
    evaluate_split(model, ds, progress=False)
    assert model.training
    with pytest.raises(MGNMError, match="protocol"):
        evaluate_split(model, ds, protocol="bogus", progress=False)
    with pytest.raises(MGNMError, match="split"):
        evaluate_split(model, ds, split="dev", progress=False)
    with pytest.raises(MGNMError, match="persisted negatives"):
        evaluate_split(model, ds, split="train", progress=False)
    model.eval()


def test_nan_scores_raise(toy):
    ds, _ = toy
    model = TableModel(ds.n_users, ds.n_items)
    model.user[:] = float("nan")
    with pytest.raises(MGNMError, match="NaN"):
        evaluate_split(model, ds, progress=False)


def test_user_groups_keep_users_whole_and_cover_every_record(toy):
    ds, _ = toy
    test = ds.records["test"]
    for batch_size in (1, 2, 7, 100):
        groups = user_groups(test, 100, batch_size)
        assert np.array_equal(np.sort(np.concatenate(groups)), np.arange(len(test)))
        seen: set[int] = set()
        for group in groups:
            users = set(test.users[group].tolist())
            assert not users & seen
            seen |= users
            assert group.size <= batch_size or len(users) == 1


def test_real_mgnm_full_protocol_matches_brute_force():
    from mgnm_pyg.models import MGNM

    ds = make_dataset(seed=5, n_users=8, n_items=36)
    torch.manual_seed(0)
    # float64 so that the batched and the one-by-one scores agree on every tie
    model = MGNM(ds.n_users, ds.n_items, dim=8, n_interests=2, n_layers=2).double()
    ks = (1, 5, 10)
    got = evaluate_split(model, ds, protocol="full", ks=ks, batch_size=4, max_len=5,
                         progress=False, item_chunk=9)
    test = ds.records["test"]
    all_items = torch.arange(1, ds.n_items + 1)
    ranks, rows = [], {}
    for r in range(len(test)):
        u, p, target = int(test.users[r]), int(test.positions[r]), int(test.targets[r])
        hist = torch.from_numpy(ds.histories(np.array([u]), np.array([p]), 5))
        with torch.no_grad():
            scores = model.predict(torch.tensor([u]), hist, all_items)[0]
        seen = set(ds.sequence(u)[:p].tolist()) | {target}
        keep = torch.tensor([i not in seen for i in range(1, ds.n_items + 1)])
        pos = scores[target - 1]
        ranks.append(1 + int((scores[keep] >= pos).sum()))
        s, lab = rows.setdefault(u, ([], []))
        s += [float(pos), *scores[keep].tolist()]
        lab += [1] + [0] * int(keep.sum())
    ranks = np.array(ranks)
    for k in ks:
        assert got[f"hit@{k}"] == pytest.approx(np.mean(ranks <= k))
        assert got[f"mrr@{k}"] == pytest.approx(np.mean(np.where(ranks <= k, 1 / ranks, 0)))
    weights = [len(s) for s, _ in rows.values()]
    aucs = [roc_auc_score(lab, s) for s, lab in rows.values()]
    assert got["gauc"] == pytest.approx(np.average(aucs, weights=weights))
    again = evaluate_split(model, ds, protocol="full", ks=ks, batch_size=64, max_len=5,
                           progress=False)
    assert again == pytest.approx(got)


def test_encode_windows_keep_groups_whole_and_in_order():
    from mgnm_pyg.training.eval_groups import encode_windows

    groups = [np.arange(n) + 100 * i for i, n in enumerate([3, 1, 4, 1, 5, 9, 2, 6])]
    for size in (1, 4, 10, 1000):
        windows = list(encode_windows(groups, size))
        assert [g for w in windows for g in w] == groups
        assert all(sum(g.size for g in w) >= size for w in windows[:-1])
        # a window closes as soon as it reaches the size
        assert all(sum(g.size for g in w[:-1]) < size for w in windows)
    assert list(encode_windows([], 8)) == []
