"""Each switch towards the authors' code changes the output, and where it has an exact
equivalent in the default model, equals it (references written here)."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import failed, invoke, ok

from mgnm_pyg.models import ComiRecDR
from mgnm_pyg.training.config import TrainConfig

USERS = torch.tensor([0, 1, 2])
HISTORIES = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0], [2, 0, 0, 0, 0]])
ITEMS = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 1]])
LABELS = torch.tensor([[1.0, 0.0, 0.0]] * 3)
SMALL = dict(dim=4, n_interests=2, n_layers=2, max_len=8)


def _model(**changes):
    torch.manual_seed(0)
    return TrainConfig(**SMALL, **changes).build_model(4, 10).double()


def _copy_shared(source, target):
    """Every parameter of ``source`` that ``target`` has with the same shape."""
    own = target.state_dict()
    same = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    target.load_state_dict(same, strict=False)
    return target


def _outputs(model):
    torch.manual_seed(3)
    scores = model.predict(USERS, HISTORIES, ITEMS)
    torch.manual_seed(3)
    loss, _ = model.loss(USERS, HISTORIES, ITEMS, LABELS.double())
    return scores.detach(), loss.detach()


SWITCHES = [
    ("capsule_maps", "per-position"), ("routing_init", "random"),
    ("interest_activation", "identity"), ("bilstm_layout", "joint"),
    ("adjacency_user", False), ("adjacency_normalization", "none"),
    ("level_input", "input"), ("graph_bias", True),
]


@pytest.mark.parametrize("conv", ["dense", "mp"])
@pytest.mark.parametrize(("name", "value"), SWITCHES)
def test_each_switch_changes_the_scores(name, value, conv):
    base = _model(conv=conv)
    switched = _copy_shared(base, _model(conv=conv, **{name: value}))
    if name == "graph_bias":
        with torch.no_grad():
            switched.convs[0].bias.fill_(0.3)
    scores, _ = _outputs(base)
    other, _ = _outputs(switched)
    assert not torch.allclose(scores, other), name


@pytest.mark.parametrize(("name", "value"), [("l2_halved", True), ("theta1", 1e-2)])
def test_each_regulariser_switch_changes_the_loss_only(name, value):
    base = _model()
    switched = _copy_shared(base, _model(**{name: value}))
    scores, loss = _outputs(base)
    other, other_loss = _outputs(switched)
    torch.testing.assert_close(scores, other, rtol=0, atol=0)
    assert other_loss != loss


def test_halved_l2_is_half_the_sum_of_squares():
    model = _model(l2_halved=True)
    enc = model.encode(USERS, HISTORIES)
    expected = 1e-5 * sum(float((p.detach() ** 2).sum()) for p in model.parameters()) / 2
    assert float(model.regularization(enc)[1]["l2"].detach()) == pytest.approx(expected, rel=1e-12)


def test_per_position_maps_all_equal_to_the_shared_map_give_the_shared_model():
    base = _model()
    per_position = _copy_shared(base, _model(capsule_maps="per-position"))
    with torch.no_grad():  # z = h @ W (shared) = W_t h with W_t = W^T for every t
        shared = base.extractors[0].capsule_weight
        per_position.extractors[0].capsule_weight.copy_(shared.t().expand(8, -1, -1))
    (scores, loss), (other, other_loss) = _outputs(base), _outputs(per_position)
    torch.testing.assert_close(other, scores, rtol=0, atol=1e-12)
    # the L2 term counts the map once per position: 7 more copies
    extra = 1e-5 * 7 * float((shared.detach() ** 2).sum())
    assert float(other_loss - loss) == pytest.approx(extra, rel=1e-9)


def test_per_position_maps_count_back_from_the_most_recent_item():
    """Histories of 5, 2 and 1 items with 8 maps: the most recent item of each uses map 7,
    the oldest of the 5-item history map 3, and no history reaches map 0."""
    model = _model(capsule_maps="per-position", use_graph=False)
    weight = model.extractors[0].capsule_weight
    before, _ = _outputs(model)
    for index, rows_that_move in [(7, [True, True, True]), (3, [True, False, False]),
                                  (0, [False, False, False])]:
        with torch.no_grad():
            weight[index].mul_(3.0)
        after, _ = _outputs(model)
        with torch.no_grad():
            weight[index].div_(3.0)
        moved = (~torch.isclose(after, before, rtol=0, atol=1e-12)).any(1)
        assert moved.tolist() == rows_that_move, index


def test_identity_interests_equal_linear_interests_with_identity_maps():
    base = _model(interest_activation="none")
    with torch.no_grad():
        base.extractors[0].interest_weight.copy_(torch.eye(4).expand(2, -1, -1))
    identity = _copy_shared(base, _model(interest_activation="identity"))
    assert identity.extractors[0].interest_weight is None
    scores, loss = _outputs(base)
    other, other_loss = _outputs(identity)
    torch.testing.assert_close(other, scores, rtol=0, atol=1e-12)
    # the loss differs by the L2 of the identity maps W'_k (2 * 4 ones, times theta2)
    assert float(loss - other_loss) == pytest.approx(1e-5 * 8, rel=1e-9)


def test_no_user_term_equals_user_embeddings_of_ones():
    base = _model()
    with torch.no_grad():
        base.user_embedding.weight.fill_(1.0)
    switched = _copy_shared(base, _model(adjacency_user=False))
    torch.testing.assert_close(_outputs(switched)[0], _outputs(base)[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, value", [("level_input", "input"), ("graph_bias", True),
                                         ("adjacency_normalization", "none")])
def test_dense_and_message_passing_paths_agree_under_each_graph_switch(name, value):
    dense = _model(**{name: value})
    mp = _copy_shared(dense, _model(conv="mp", **{name: value}))
    torch.testing.assert_close(_outputs(mp), _outputs(dense), rtol=0, atol=1e-12)


def test_random_routing_logits_repeat_under_the_same_seed():
    model = _model(routing_init="random")
    torch.testing.assert_close(_outputs(model), _outputs(model), rtol=0, atol=0)


def test_comirec_dr_maps_per_position_by_default():
    assert ComiRecDR(4, 10, dim=4).config["capsule_maps"] == "per-position"
    assert TrainConfig(model="comirec-dr").build_model(4, 10).config["capsule_maps"] == (
        "per-position")
    shared = TrainConfig(model="comirec-dr", capsule_maps="shared").build_model(4, 10)
    assert shared.capsules.capsule_weight.shape == (16, 64)


def test_train_with_the_authors_preset_runs(tmp_path):
    out = tmp_path / "run"
    ok(invoke("train", "--preset", "authors", "--data", "synthetic:tiny", "--epochs", "1",
              "--out", out, "--no-progress", "--no-eval-full"))
    config = json.loads((out / "config.json").read_text())
    assert (config["batch_size"], config["capsule_maps"], config["bilstm_layout"]) == (
        42, "per-position", "joint")
    assert config["epochs"] == 1  # the command line wins over the preset
    sampled = json.loads((out / "test_metrics.json").read_text())["sampled"]
    assert {"hit@5", "per_user_pooled_hit@5", "per_user_pooled_n_users"} <= set(sampled)
    # the routing logits are drawn, from the same seed in every evaluation
    again = json.loads(ok(invoke("evaluate", out, "--eval-per-user", "--json", "--device", "cpu")))
    common = set(again) & set(sampled)
    assert len(common) > 5
    assert {k: again[k] for k in common} == pytest.approx({k: sampled[k] for k in common})
    text = ok(invoke("evaluate", out, "--eval-per-user", "--device", "cpu"))
    assert "per_user_pooled_ndcg@5" in text and "hit@5" in text
    assert "per_user_pooled" not in ok(invoke("evaluate", out, "--device", "cpu"))


def test_capsule_switches_with_another_extractor_are_a_clean_error():
    failed(invoke("train", "--data", "synthetic:tiny", "--extractor", "sum",
                  "--routing-init", "random"), "--routing-init random", "capsule extractor")
    failed(invoke("train", "--data", "synthetic:tiny", "--extractor", "sum",
                  "--interest-activation", "identity"), "--interest-activation identity")
    failed(invoke("train", "--data", "synthetic:tiny", "--extractor", "sum",
                  "--capsule-output", "mean"), "--capsule-output mean", "capsule extractor")


def test_a_preset_capsule_setting_with_another_extractor_names_the_way_back():
    # tuned's capsule output is the mean: another extractor must say how to set it back
    failed(invoke("train", "--data", "synthetic:tiny", "--preset", "tuned", "--extractor",
                  "transformer"), "--capsule-output mean", "pass --capsule-output squash")
    from mgnm_pyg.training.settings import build_config

    config = build_config({"extractor": "transformer", "capsule_output": "squash"},
                          preset="tuned")
    assert (config.extractor, config.capsule_output, config.n_layers) == ("transformer",
                                                                         "squash", 1)
