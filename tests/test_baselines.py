"""Baselines (pop, gru4rec, sasrec, comirec-dr) under the common interface, and the losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.inference.evaluate import evaluate_run
from mgnm_pyg.inference.recommend import recommend
from mgnm_pyg.models import MGNM, MODELS, ComiRecDR, Popularity, build_model
from mgnm_pyg.models.loss import full_softmax_loss, training_loss
from mgnm_pyg.training.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from mgnm_pyg.training.config import TrainConfig
from mgnm_pyg.training.saved_run import load_run
from mgnm_pyg.training.stopping import stop_epoch
from mgnm_pyg.training.trainer import Trainer

BASELINES = ("pop", "gru4rec", "sasrec", "comirec-dr")
SMALL = {"dim": 8, "max_len": 10, "n_interests": 3, "n_blocks": 1, "n_heads": 2, "dropout": 0.2}
N_USERS, N_ITEMS = 7, 30


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dataset("tiny")


def small_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, N_USERS, N_ITEMS, SMALL)
    if isinstance(model, Popularity):  # some made-up counts, so that scores differ
        model.counts.copy_(torch.arange(N_ITEMS + 1) % 7)
    return model.eval()


def batch():
    users = torch.tensor([0, 3, 6])
    histories = torch.tensor([[4, 9, 2, 0, 0], [7, 0, 0, 0, 0], [1, 2, 3, 5, 8]])
    return users, histories


@pytest.mark.parametrize("name", BASELINES)
def test_interface_shapes_and_config(name):
    model = small_model(name)
    users, histories = batch()
    enc = model.encode(users, histories)
    per_row = torch.randint(1, N_ITEMS + 1, (3, 6))
    shared = torch.arange(1, N_ITEMS + 1)
    assert model.score(enc.interests, per_row).shape == (3, 1, 6)
    assert model.score(enc.interests, shared).shape == (3, 1, N_ITEMS)
    scores = model.predict(users, histories, per_row)
    assert scores.shape == (3, 6)
    # shared candidates give the same scores as the same items listed per row
    full = model.predict(users, histories, shared)
    torch.testing.assert_close(scores, full.gather(1, per_row - 1))
    # config holds the constructor arguments: a rebuilt model takes the same weights
    rebuilt = type(model)(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval().predict(users, histories, per_row), scores)


@pytest.mark.parametrize("name", BASELINES)
def test_extra_padding_and_batch_mates_do_not_change_a_score(name):
    model = small_model(name)
    users, histories = batch()
    items = torch.arange(1, N_ITEMS + 1)
    scores = model.predict(users, histories, items)
    padded = torch.cat([histories, torch.zeros(3, 4, dtype=torch.long)], 1)
    torch.testing.assert_close(model.predict(users, padded, items), scores)
    alone = model.predict(users[1:2], histories[1:2, :1], items)
    torch.testing.assert_close(alone, scores[1:2])


def test_sasrec_numbers_positions_from_the_newest_item():
    model = small_model("sasrec")
    _, histories = batch()
    pos = model.positions(histories)
    assert pos[0, :3].tolist() == [7, 8, 9] and pos[1, 0] == 9
    assert pos[2].tolist() == [5, 6, 7, 8, 9]


def test_comirec_trains_with_the_target_interest_and_infers_with_the_best():
    model = small_model("comirec-dr")
    users, histories = batch()
    interests = model.encode(users, histories).interests  # [B, K, d]
    items = torch.tensor([[3, 11, 12], [5, 1, 2], [9, 20, 21]])
    x = model.item_embedding(items)  # [B, C, d]
    per_interest = torch.einsum("bkd,bcd->bkc", interests, x)
    chosen = per_interest[:, :, 0].argmax(1)  # the target is column 0
    expected = per_interest[torch.arange(3), chosen]
    got = model.train_scores(model.encode(users, histories), items, items[:, 0])
    torch.testing.assert_close(got[:, 0], expected)
    torch.testing.assert_close(model.predict(users, histories, items), per_interest.max(1).values)


def test_softmax_loss_equals_cross_entropy_on_hand_built_logits():
    users, histories = batch()
    targets = torch.tensor([5, 30, 1])
    # SASRec (eval mode: no dropout): the last valid output against the whole item table
    model = small_model("sasrec")
    user_vec = model.encode(users, histories).interests
    logits = user_vec @ model.item_embedding.weight[1:].t()
    loss, parts = full_softmax_loss(model, users, histories, targets)
    ref = F.cross_entropy(logits, targets - 1, reduction="sum")
    torch.testing.assert_close(loss, ref)
    assert float(parts["total"]) == pytest.approx(ref.item() / 3, rel=1e-5)
    # ComiRec: the interest closest to the target scores every item
    model = small_model("comirec-dr")
    interests = model.encode(users, histories).interests
    table = model.item_embedding.weight
    chosen = (interests @ table[targets].unsqueeze(-1)).squeeze(-1).argmax(1)
    logits = interests[torch.arange(3), chosen] @ table[1:].t()
    torch.testing.assert_close(full_softmax_loss(model, users, histories, targets)[0],
                               F.cross_entropy(logits, targets - 1, reduction="sum"))


def test_mgnm_softmax_loss_is_per_level_cross_entropy_plus_eq17():
    torch.manual_seed(0)
    model = MGNM(N_USERS, N_ITEMS, dim=8, n_interests=2, n_layers=2).eval()
    users, histories = batch()
    targets = torch.tensor([5, 30, 1])
    enc = model.encode(users, histories)
    levels = model.score(enc.interests, torch.arange(1, N_ITEMS + 1))  # [B, 3, M]
    ref = sum(F.cross_entropy(levels[:, level], targets - 1, reduction="sum")
              for level in range(3))
    ref = ref + model.theta1 * enc.adjacency.abs().sum()
    ref = ref + model.theta2 * sum(p.pow(2).sum() for p in model.parameters())
    items = torch.cat([targets[:, None], torch.tensor([[2, 3]] * 3)], 1)
    labels = torch.tensor([[1.0, 0, 0]] * 3)
    loss, parts, rows = training_loss(model, "softmax", users, histories, items, labels)
    torch.testing.assert_close(loss, ref)
    assert rows == 3 and set(parts) == {"ce", "l1", "l2", "total", "ce_level0", "ce_level1",
                                        "ce_level2"}
    for level in range(3):  # each level's logged cross-entropy, per record
        own = F.cross_entropy(levels[:, level], targets - 1, reduction="sum") / 3
        torch.testing.assert_close(parts[f"ce_level{level}"], own.detach())
    # bce is MGNM's own Eq. 16 loss
    bce, _, rows = training_loss(model, "bce", users, histories, items, labels)
    torch.testing.assert_close(bce, model.loss(users, histories, items, labels)[0])
    assert rows == 9


def hand_counts(data) -> np.ndarray:
    """Every interaction of the training part of each sequence (positions 0..last train)."""
    records = data.records["train"]
    last = np.full(data.n_users, -1)
    np.maximum.at(last, records.users, records.positions)
    items = [data.items[data.offsets[u] : data.offsets[u] + last[u] + 1]
             for u in range(data.n_users) if last[u] >= 0]
    return np.bincount(np.concatenate(items), minlength=data.n_items + 1)


def train(tiny, tmp_path, name, **settings):
    settings = {"epochs": 2, "device": "cpu", "eval_batch_size": 256, **settings}
    cfg = TrainConfig(data="synthetic:tiny", model=name, **settings)
    trainer = Trainer(cfg, tmp_path / name, dataset=tiny, progress=False, echo=lambda s: None)
    return trainer, trainer.fit()


def test_pop_scores_are_the_training_counts(tiny, tmp_path):
    trainer, result = train(tiny, tmp_path, "pop", epochs=5, patience=5)
    model = trainer.model
    assert trainer.optimizer is None and sum(p.numel() for p in model.parameters()) == 0
    counts = torch.from_numpy(hand_counts(tiny))
    everything = torch.arange(tiny.n_items + 1)
    scores = model.predict(torch.tensor([0]), torch.tensor([[1]]), everything)[0]
    torch.testing.assert_close(scores.double() * counts.sum(), counts.double())
    # nothing to train: fitted by one counting pass, validated once, then tested
    assert result.best_epoch == 1 and torch.equal(model.counts, counts)
    assert len(result.history) == 1 and trainer.epoch == 1
    assert len((result.run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    assert torch.equal(load_checkpoint(trainer.last_path)["model"]["counts"], counts)
    # the stopping-rule replay of reproduce agrees: the finished run is not continued
    assert stop_epoch(result.run_dir, trainer.config) == 1


def test_one_pass_models_have_no_trainable_parameters(tiny):
    from mgnm_pyg.training.stopping import ONE_PASS_MODELS

    for name in ONE_PASS_MODELS:
        model = TrainConfig(model=name).build_model(tiny.n_users, tiny.n_items)
        assert not any(p.requires_grad for p in model.parameters())


def test_pop_says_it_was_fitted_once(tiny, tmp_path):
    lines: list[str] = []
    cfg = TrainConfig(data="synthetic:tiny", model="pop", epochs=4, device="cpu",
                      eval_full=False)
    Trainer(cfg, tmp_path / "pop", dataset=tiny, progress=False, echo=lines.append).fit()
    assert "pop has no trainable parameters: fitted by one pass over the training records " \
           "and validated once" in lines
    assert sum(line.lstrip().startswith("1 ") for line in lines) == 1
    assert not any(line.lstrip().startswith("2 ") for line in lines)


@pytest.mark.parametrize(("name", "loss"), [("gru4rec", "bce"), ("sasrec", "bce"),
                                            ("comirec-dr", "bce"), ("comirec-dr", "softmax")])
def test_short_training_beats_chance(tiny, tmp_path, name, loss):
    _, result = train(tiny, tmp_path, name, loss=loss, lr=1e-2, dim=16, max_len=20)
    chance = 5 / (1 + tiny.candidates["valid"].shape[1])
    assert result.best_valid["hit@5"] > 1.5 * chance, result.history


def test_evaluate_and_recommend_rebuild_the_baseline(tiny, tmp_path):
    _, result = train(tiny, tmp_path, "comirec-dr", epochs=1, eval_full=False)
    run = load_run(result.run_dir, device="cpu")
    assert isinstance(run.model, ComiRecDR) and run.config.model == "comirec-dr"
    metrics, _ = evaluate_run(run, protocol="full", ks=(5,))
    assert 0 <= metrics["hit@5"] <= 1 and metrics["n_records"] == len(tiny.records["test"])
    user = str(tiny.user_ids[3])
    rec = recommend(run, user, k=5)
    seen = {str(i) for i in tiny.item_ids[tiny.sequence(3)]}
    assert len(rec.items) == 5 and not seen & set(rec.items)
    assert rec.scores == sorted(rec.scores, reverse=True)
    # It does not use the user: a new user with the same history gets the same list.
    history = [str(i) for i in tiny.item_ids[tiny.sequence(3)]]
    new_user = recommend(run, "someone-new", k=5, history=history)
    assert not new_user.known_user
    assert new_user.items == rec.items and new_user.scores == pytest.approx(rec.scores)


def test_a_checkpoint_without_the_model_field_loads_as_mgnm(tiny, tmp_path):
    _, result = train(tiny, tmp_path, "pop", epochs=1, eval_full=False)
    assert isinstance(load_run(result.run_dir, device="cpu").model, Popularity)
    # an MGNM checkpoint written before --model existed: no model/loss/sasrec keys
    cfg = TrainConfig(data="synthetic:tiny", dim=8, n_interests=2, n_layers=1)
    mgnm = cfg.build_model(tiny.n_users, tiny.n_items)
    old = {k: v for k, v in cfg.to_dict().items()
           if k not in ("model", "loss", "n_blocks", "n_heads", "dropout")}
    path = checkpoint_path(result.run_dir, "best.pt")
    save_checkpoint(path, model=mgnm, config=old, epoch=1,
                    dataset=load_checkpoint(path)["dataset"])
    assert isinstance(load_run(result.run_dir, device="cpu").model, MGNM)


def test_registry_names_and_unknown_model():
    assert set(MODELS) == {"mgnm", *BASELINES}
    with pytest.raises(ValueError, match="unknown model 'bert4rec'"):
        build_model("bert4rec", 3, 4, {})
    with pytest.raises(ValueError, match="loss must be one of"):
        training_loss(small_model("pop"), "bpr", *batch(), torch.ones(3, 1, dtype=torch.long),
                      torch.ones(3, 1))
