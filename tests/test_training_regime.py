"""The training-regime switches that depart from the paper (issue 21), each against a
reference written here, and each shown to change what it names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mgnm_pyg.data.negatives import sample_shared_negatives, shared_negative_distribution
from mgnm_pyg.data.synthetic import synthetic_dataset
from mgnm_pyg.models import MGNM, build_model
from mgnm_pyg.models.loss import SharedNegatives, sampled_softmax_loss, training_loss
from mgnm_pyg.nn.level_norm import normalize_levels
from mgnm_pyg.training.schedule import lr_factor

N_USERS, N_ITEMS = 5, 40


def _batch():
    users = torch.tensor([0, 2, 4])
    histories = torch.tensor([[4, 9, 2, 0], [7, 0, 0, 0], [1, 2, 3, 5]])
    targets = torch.tensor([11, 7, 30])
    return users, histories, targets


def _mgnm(**kw) -> MGNM:
    torch.manual_seed(0)
    return MGNM(N_USERS, N_ITEMS, dim=8, n_interests=2, n_layers=2, **kw).double()


def _reference_sampled_softmax(model, users, histories, targets, items, log_q):
    """Plain loops: per record and level, -log softmax of the target among itself and the
    shared negatives other than the target, logits corrected by -log q."""
    with torch.no_grad():
        level_scores = model.train_scores(model.encode(users, histories),
                                          torch.arange(N_ITEMS + 1), targets)  # [B, L, M+1]
    total = 0.0
    for r in range(len(targets)):
        t = int(targets[r])
        for level in range(level_scores.shape[1]):
            row = level_scores[r, level]
            corr = (lambda i: float(log_q[i])) if log_q is not None else (lambda i: 0.0)
            pos = row[t].item() - corr(t)
            logits = [pos] + [row[i].item() - corr(i) for i in items.tolist() if i != t]
            peak = max(logits)
            total += -(pos - peak - math.log(sum(math.exp(v - peak) for v in logits)))
    return total


@pytest.mark.parametrize("logq", [False, True])
def test_sampled_softmax_equals_a_loop_reference(logq):
    model = _mgnm(theta1=0.0, theta2=0.0)
    users, histories, targets = _batch()
    items = torch.tensor([3, 7, 7, 11, 20, 39])  # 7 and 11 are targets of some records
    log_q = torch.log(torch.linspace(0.5, 2.0, N_ITEMS + 1)).double() if logq else None
    loss, parts = sampled_softmax_loss(model, users, histories, targets,
                                       SharedNegatives(items, log_q))
    expected = _reference_sampled_softmax(model, users, histories, targets, items, log_q)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert parts["ce"].item() == pytest.approx(expected / 3, rel=1e-10)
    assert sum(parts[f"ce_level{lv}"].item() for lv in range(3)) == pytest.approx(
        expected / 3, rel=1e-10)


def test_sampled_softmax_reaches_every_model_and_keeps_mgnm_regularisers():
    users, histories, _targets = _batch()
    items = torch.tensor([[11] + [1] * 4, [7] + [1] * 4, [30] + [1] * 4])
    labels = torch.zeros(3, 5)
    labels[:, 0] = 1
    negatives = SharedNegatives(torch.tensor([5, 6, 8]), None)
    for name in ("gru4rec", "sasrec", "comirec-dr", "pop"):
        torch.manual_seed(0)
        model = build_model(name, N_USERS, N_ITEMS, {"dim": 8, "max_len": 4, "n_blocks": 1})
        loss, _, rows = training_loss(model, "sampled-softmax", users, histories, items,
                                      labels, negatives)
        assert rows == 3 and torch.isfinite(loss)
    model = _mgnm()
    loss, parts, _ = training_loss(model, "sampled-softmax", users, histories, items, labels,
                                   negatives)
    assert set(parts) >= {"ce", "l1", "l2", "total"}
    assert loss.item() == pytest.approx(3 * (parts["ce"] + parts["l1"] + parts["l2"]).item())
    with pytest.raises(ValueError, match="shared negatives"):
        training_loss(model, "sampled-softmax", users, histories, items, labels)


def test_score_scale_multiplies_every_level_score_and_can_be_learned():
    users, histories, _targets = _batch()
    items = torch.arange(1, N_ITEMS + 1)
    base = _mgnm()
    scaled = _mgnm(score_scale=10.0)
    enc = base.encode(users, histories)
    torch.testing.assert_close(scaled.score(enc.interests, items),
                               10.0 * base.score(enc.interests, items))
    assert "score_scale" not in dict(scaled.named_parameters())
    learned = _mgnm(score_scale=10.0, learn_score_scale=True)
    torch.testing.assert_close(learned.predict(users, histories, items),
                               scaled.predict(users, histories, items))
    loss, _ = learned.loss(users, histories, items.expand(3, -1), torch.ones(3, N_ITEMS))
    loss.backward()
    assert learned.score_scale.grad is not None and learned.score_scale.grad.abs() > 0


def test_item_init_scale_scales_the_initial_item_table():
    base, big = _mgnm(), _mgnm(item_init_scale=3.0)
    torch.testing.assert_close(big.item_embedding.weight, 3.0 * base.item_embedding.weight)
    assert big.item_embedding.weight[0].abs().sum() == 0


def test_level_norm_centres_and_rescales_deep_levels_per_sequence():
    torch.manual_seed(1)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    levels = [torch.randn(2, 4, 3) * mask.unsqueeze(-1) for _ in range(3)]
    levels[1] = levels[1] + 5.0 * mask.unsqueeze(-1)  # a common offset, as LeakyReLU gives
    assert normalize_levels(levels, mask, "none") is levels
    for kind in ("center", "rescale", "center-rescale"):
        out = normalize_levels(levels, mask, kind)
        torch.testing.assert_close(out[0], levels[0])  # level 0 untouched
        for h, raw in zip(out[1:], levels[1:], strict=True):
            assert (h[~mask] == 0).all()
            for b in range(2):
                valid = h[b][mask[b]]
                if kind != "rescale" and mask[b].sum() > 1:
                    torch.testing.assert_close(valid.mean(0), torch.zeros(3), atol=1e-6,
                                               rtol=0)
                # a one-node sequence centred is all zeros, which no factor rescales
                if kind == "rescale" or (kind == "center-rescale" and mask[b].sum() > 1):
                    want = levels[0][b][mask[b]].norm(dim=1).mean()
                    torch.testing.assert_close(valid.norm(dim=1).mean(), want)
                if kind == "rescale":  # direction kept
                    ratio = valid / raw[b][mask[b]]
                    torch.testing.assert_close(ratio, ratio[0, 0].expand_as(ratio))
    # and the switch reaches MGNM's interests
    users, histories, _ = _batch()
    plain = _mgnm().encode(users, histories).interests
    normed = _mgnm(level_norm="center").encode(users, histories).interests
    torch.testing.assert_close(normed[:, 0], plain[:, 0])
    assert not torch.allclose(normed[:, 1:], plain[:, 1:])


def test_lr_factor_known_values():
    assert lr_factor(5, 10, 3) == 1.0
    assert lr_factor(5, 10, 3, "constant", warmup_epochs=1.0) == 0.5
    assert lr_factor(10, 10, 3, "cosine", warmup_epochs=1.0) == 1.0
    assert lr_factor(20, 10, 3, "cosine", warmup_epochs=1.0) == pytest.approx(0.5)
    assert lr_factor(30, 10, 3, "cosine", warmup_epochs=1.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(15, 10, 2, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * .75)))
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor(1, 10, 3, "step")


def test_shared_negatives_follow_their_distribution_and_replay():
    data = synthetic_dataset("tiny")
    records = data.records["train"]
    uniform = shared_negative_distribution(data, records, "uniform")
    assert uniform[0] == 0 and np.allclose(uniform[1:], 1 / data.n_items)
    pop = shared_negative_distribution(data, records, "popularity")
    counts = np.bincount(records.targets, minlength=data.n_items + 1) + 1.0
    np.testing.assert_allclose(pop[1:], counts[1:] / counts[1:].sum())
    draws = sample_shared_negatives(pop, 40, 5000, np.random.default_rng(3))
    again = sample_shared_negatives(pop, 40, 5000, np.random.default_rng(3))
    np.testing.assert_array_equal(draws, again)
    assert draws.min() >= 1 and draws.max() <= data.n_items
    freq = np.bincount(draws.ravel(), minlength=data.n_items + 1) / draws.size
    np.testing.assert_allclose(freq[1:], pop[1:], atol=3e-3)
    flat = sample_shared_negatives(uniform, 2, 7, np.random.default_rng(0))
    assert flat.shape == (2, 7) and flat.min() >= 1


def test_regime_switches_change_training_and_a_resumed_run_replays_them(tmp_path):
    import json

    from mgnm_pyg.training.settings import build_config
    from mgnm_pyg.training.trainer import Trainer

    data = synthetic_dataset("tiny")
    fast = {"data": "synthetic:tiny", "dim": 8, "n_interests": 2, "n_layers": 1, "max_len": 10,
            "batch_size": 64, "epochs": 2, "patience": 5, "eval_full": False,
            "device": "cpu"}
    regime = {"loss": "sampled-softmax", "shared_negatives": 50,
              "negative_sampling": "popularity", "logq_correction": True,
              "lr_schedule": "cosine", "lr_warmup_epochs": 0.5, "score_scale": 5.0}

    def train(name, settings, epochs=2):
        cfg = build_config({**fast, **settings, "epochs": epochs})
        trainer = Trainer(cfg, tmp_path / name, dataset=data, progress=False,
                          echo=lambda _: None)
        trainer.fit()
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return [(r["train_loss"], r["valid"]) for r in rows]

    full = train("full", regime)
    for name in ("shared_negatives", "negative_sampling", "logq_correction", "lr_schedule",
                 "lr_warmup_epochs"):
        changed = {**regime, name: {"shared_negatives": 20, "negative_sampling": "uniform",
                                    "logq_correction": False, "lr_schedule": "constant",
                                    "lr_warmup_epochs": 0.0}[name]}
        assert train(name, changed) != full, name
    # interrupted in epoch 2 of 2 (the cosine schedule spans --epochs), then resumed
    from mgnm_pyg.errors import TrainingInterrupted

    class Interrupted(Trainer):
        def train_epoch(self, epoch):
            if epoch == 2:
                raise KeyboardInterrupt
            return super().train_epoch(epoch)

    cfg = build_config({**fast, **regime})
    with pytest.raises(TrainingInterrupted):
        Interrupted(cfg, tmp_path / "resumed", dataset=data, progress=False,
                    echo=lambda _: None).fit()
    Trainer.resume(tmp_path / "resumed", progress=False, echo=lambda _: None).fit()
    log = (tmp_path / "resumed" / "metrics.jsonl").read_text()
    rows = [json.loads(x) for x in log.splitlines()]
    assert [(r["train_loss"], r["valid"]) for r in rows] == full


def test_pooled_level_loss_trains_the_score_that_ranks():
    from mgnm_pyg.training.config import TrainConfig

    users, histories, targets = _batch()
    items = torch.tensor([3, 7, 11, 20, 39])
    negatives = SharedNegatives(items, None)
    pooled = _mgnm(theta1=0.0, theta2=0.0, level_loss="pooled")
    loss, parts = sampled_softmax_loss(pooled, users, histories, targets, negatives)
    with torch.no_grad():  # reference: loops over the max over levels of every score
        best = pooled.score(pooled.encode(users, histories).interests,
                            torch.arange(N_ITEMS + 1)).amax(1)
    expected = 0.0
    for r, t in enumerate(targets.tolist()):
        logits = [best[r, t].item()] + [best[r, i].item() for i in items.tolist() if i != t]
        peak = max(logits)
        expected += -(logits[0] - peak - math.log(sum(math.exp(v - peak) for v in logits)))
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert not any(name.startswith("ce_level") for name in parts)
    per_level, _ = sampled_softmax_loss(_mgnm(theta1=0.0, theta2=0.0), users, histories,
                                        targets, negatives)
    assert per_level.item() != pytest.approx(loss.item(), rel=1e-3)

    candidates = torch.tensor([[11, 3, 5], [7, 3, 5], [30, 3, 5]])
    labels = torch.tensor([[1.0, 0, 0]] * 3, dtype=torch.float64)
    bce, bce_parts = pooled.loss(users, histories, candidates, labels)
    with torch.no_grad():
        pooled_scores = pooled.score(pooled.encode(users, histories).interests,
                                     candidates).amax(1)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(
        pooled_scores, labels, reduction="sum")
    assert bce.item() == pytest.approx(reference.item(), rel=1e-10)  # theta1 = theta2 = 0
    assert "bce_level0" not in bce_parts
    model = TrainConfig(level_loss="pooled").build_model(N_USERS, N_ITEMS)
    assert model.level_loss == "pooled"


def test_capsule_output_mean_changes_mgnm_scores_and_reaches_the_config():
    from mgnm_pyg.training.config import TrainConfig

    users, histories, _ = _batch()
    squashed, mean = _mgnm(), _mgnm(capsule_output="mean")
    mean.load_state_dict(squashed.state_dict())  # same weights: only the output differs
    with torch.no_grad():
        a = squashed.score(squashed.encode(users, histories).interests, torch.arange(9))
        b = mean.score(mean.encode(users, histories).interests, torch.arange(9))
    assert not torch.allclose(a, b)
    config = TrainConfig(capsule_output="mean")
    model = config.build_model(N_USERS, N_ITEMS)
    assert all(e.capsule_output == "mean" for e in model.extractors)
