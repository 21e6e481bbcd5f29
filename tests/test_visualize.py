"""`mgnm-pyg visualize` and the arrays it draws (mgnm_pyg.insight.arrays), on the `tiny` preset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from cli_helpers import failed, invoke, ok

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.insight.arrays import (
    latest_history,
    level_features,
    pooling_comparison,
    project_2d,
    routing,
    routing_entropy,
    strongest_edges,
)
from mgnm_pyg.models import MGNM

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A small model so that training takes seconds; 2 layers -> 3 levels, 3 interests.
FAST = ["--data", "synthetic:tiny", "--dim", "8", "--n-interests", "3", "--n-layers", "2",
        "--max-len", "12", "--batch-size", "256", "--eval-batch-size", "256",
        "--device", "cpu", "--no-progress", "--epochs", "1", "--no-eval-full"]


def captured_figures(monkeypatch, name: str) -> list:
    """Wrap ``<name>`` of ``mgnm_pyg.insight.figures`` (pictures of a user) or
    ``mgnm_pyg.insight.charts`` (charts of runs) so each Figure it returns is also
    collected (to inspect the panels the command drew before it saved them)."""
    from mgnm_pyg.insight import charts
    from mgnm_pyg.insight import figures as visualize

    module = visualize if hasattr(visualize, name) else charts
    figures = []
    real = getattr(module, name)

    def capture(*args, **kwargs):
        figures.append(real(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(module, name, capture)
    return figures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("vis") / "tiny"
    ok(invoke("train", *FAST, "--out", out))
    return out


@pytest.fixture(scope="module")
def sum_run(tmp_path_factory):
    """A second run with other L, K and the sum extractor (no routing)."""
    out = tmp_path_factory.mktemp("vis") / "sum"
    ok(invoke("train", *FAST, "--n-layers", "1", "--n-interests", "2", "--extractor", "sum",
              "--out", out))
    return out


@pytest.fixture(scope="module")
def run(run_dir):
    from mgnm_pyg.training.saved_run import load_run

    return load_run(run_dir, device="cpu")


def _batch(model: MGNM, n_users: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 1, 4, 7, 2])[:n_users]
    histories = torch.randint(1, model.item_embedding.num_embeddings, (n_users, 7), generator=g)
    histories[torch.arange(7)[None] >= lengths[:, None]] = 0
    return torch.arange(n_users), histories


@pytest.mark.parametrize("kwargs", [dict(conv="dense"), dict(conv="mp"),
                                    dict(share_capsule_weights=False, n_layers=2)])
def test_arrays_equal_what_encode_computes(kwargs):
    torch.manual_seed(1)
    model = MGNM(6, 30, dim=8, n_interests=3, **kwargs).eval()
    users, histories = _batch(model)
    enc = model.encode(users, histories)
    features = level_features(model, users, histories)
    np.testing.assert_allclose(features.adjacency, enc.adjacency.detach().numpy(), atol=1e-6)
    np.testing.assert_array_equal(features.mask, enc.mask.numpy())
    routes = routing(model, users, histories)
    np.testing.assert_allclose(routes.interests, enc.interests.detach().numpy(), atol=1e-5)
    # Routing: every valid column sums to 1 over the interests, padded columns are 0.
    sums = routes.coupling.sum(2)  # [B, L+1, m]
    valid = np.broadcast_to(routes.mask[:, None], sums.shape)
    np.testing.assert_allclose(sums[valid], 1.0, atol=1e-5)
    assert np.all(sums[~valid] == 0)
    assert routes.coupling.shape == (5, model.n_levels, 3, 7)


def test_propagation_matrix_by_hand():
    torch.manual_seed(2)
    model = MGNM(3, 10, dim=4, n_interests=2, n_layers=1).eval()
    users, histories = torch.tensor([1]), torch.tensor([[3, 5, 9]])
    f = level_features(model, users, histories)
    x = model.item_embedding.weight[[3, 5, 9]].detach().numpy().astype(np.float64)
    xu = model.user_embedding.weight[1].detach().numpy().astype(np.float64)
    a = 1 / (1 + np.exp(-(x * xu) @ x.T))
    d = a.sum(1) ** -0.5
    np.testing.assert_allclose(f.adjacency[0], a, atol=1e-6)
    np.testing.assert_allclose(f.propagation[0], np.eye(3) + d[:, None] * a * d[None], atol=1e-6)
    assert f.levels.shape == (1, 2, 3, 4)
    assert f.adjacency_formula == "A_ij = sigmoid(sum_k x_i[k] x_j[k] x_u[k])"


def test_propagation_and_formulas_follow_the_models_switches():
    # the authors' raw A without the user term, and a scaled Eq. 1: the arrays and the
    # titles are what this model computes, not the paper's Eq. 1 and Eq. 3
    torch.manual_seed(2)
    model = MGNM(3, 10, dim=4, n_interests=2, n_layers=1, adjacency_user=False,
                 adjacency_normalization="none", adjacency_scale=4.0).eval()
    f = level_features(model, torch.tensor([1]), torch.tensor([[3, 5, 9]]))
    x = model.item_embedding.weight[[3, 5, 9]].detach().numpy().astype(np.float64)
    a = 1 / (1 + np.exp(-4.0 * x @ x.T))
    np.testing.assert_allclose(f.adjacency[0], a, atol=1e-6)
    np.testing.assert_allclose(f.propagation[0], a, atol=1e-6)
    assert (f.adjacency_formula, f.propagation_formula) == (
        "A_ij = sigmoid(4 * sum_k x_i[k] x_j[k])", "P = A (raw)")


def test_ablations_without_graph_or_routing_are_named():
    torch.manual_seed(0)
    users, histories = torch.tensor([0]), torch.tensor([[1, 2]])
    with pytest.raises(MGNMError, match="without the user-aware graph"):
        level_features(MGNM(2, 5, dim=4, use_graph=False), users, histories)
    with pytest.raises(MGNMError, match=r"routing is unavailable.*'sum'"):
        routing(MGNM(2, 5, dim=4, extractor="sum"), users, histories)
    from mgnm_pyg.models import GRU4Rec

    with pytest.raises(MGNMError, match="GRU4Rec, not MGNM"):
        level_features(GRU4Rec(2, 5), users, histories)


def test_routing_entropy_of_known_couplings():
    k = 4
    coupling = np.zeros((1, 2, k, 3))
    coupling[0, 0, 0, :] = 1.0  # level 0: every item to interest 1 -> entropy 0
    coupling[0, 1, :, :] = 1 / k  # level 1: even split -> log K
    mask = np.array([[True, True, False]])
    h = routing_entropy(coupling, mask)
    np.testing.assert_allclose(h[0], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(h[1], [np.log(k)] * 2)


def test_pca_projection_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 5)) * np.array([10.0, 3.0, 1.0, 0.5, 0.1])
    out = project_2d(points)
    centred = points - points.mean(0)
    _, vectors = np.linalg.eigh(centred.T @ centred)  # eigenvalues ascending
    reference = centred @ vectors[:, [-1, -2]]
    # Equal to the projection on the two leading eigenvectors, up to each axis's sign.
    np.testing.assert_allclose(np.abs(out), np.abs(reference), atol=1e-8)
    np.testing.assert_array_equal(out, project_2d(points))  # deterministic
    assert project_2d(points[:, :1]).shape == (200, 2)


def test_strongest_edges_per_node_and_threshold():
    adj = np.array([[1.0, 0.9, 0.1, 0.2],
                    [0.9, 1.0, 0.3, 0.4],
                    [0.1, 0.3, 1.0, 0.8],
                    [0.2, 0.4, 0.8, 1.0]])
    assert strongest_edges(adj, per_node=1) == [(2, 3, 0.8), (0, 1, 0.9)]
    assert {(i, j) for i, j, _ in strongest_edges(adj, per_node=2)} == {
        (0, 1), (0, 3), (1, 3), (2, 3), (1, 2)}
    assert [(i, j) for i, j, _ in strongest_edges(adj, threshold=0.35)] == [(1, 3), (2, 3),
                                                                            (0, 1)]


def test_history_and_arrays_of_a_trained_run(run):
    h = latest_history(run.dataset, "u003", run.config.max_len)
    seq = run.dataset.sequence(h.index)
    np.testing.assert_array_equal(h.items, seq[-run.config.max_len:])
    assert h.item_ids == [str(run.dataset.item_ids[i]) for i in h.items]
    users, histories = h.batch()
    with torch.no_grad():
        enc = run.model.encode(users, histories)
    np.testing.assert_allclose(level_features(run.model, users, histories).adjacency,
                               enc.adjacency.numpy(), atol=1e-6)
    np.testing.assert_allclose(routing(run.model, users, histories).interests,
                               enc.interests.numpy(), atol=1e-5)
    with pytest.raises(MGNMError, match="unknown user 'nobody'"):
        latest_history(run.dataset, "nobody", 10)


def _png(path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_adjacency_command_writes_a_png(run_dir, monkeypatch):
    from mgnm_pyg.insight import figures as visualize

    figures = captured_figures(monkeypatch, "user_figure")
    out = ok(invoke("visualize", "adjacency", run_dir, "--user", "u003", "--max-items", "5",
                    "--device", "cpu"))
    path = run_dir / "plots" / "adjacency-u003.png"
    assert str(path) in out
    _png(path)
    names = [ax.get_label() for ax in visualize.panels(figures[0])]
    # A, P, the graph, and one routing strip for each of the 3 levels.
    assert names == ["panel:adjacency", "panel:propagation", "panel:graph", "panel:routing0",
                     "panel:routing1", "panel:routing2"]
    assert "last 5 of" in figures[0].get_suptitle()
    svg = run_dir / "a.svg"
    ok(invoke("visualize", "adjacency", run_dir, "--user", "u003", "--threshold", "0.5",
              "--out", svg))
    assert svg.read_text().lstrip().startswith("<?xml")


def test_interests_command_writes_a_png(run_dir, sum_run, tmp_path, monkeypatch):
    from mgnm_pyg.insight import figures as visualize

    figures = captured_figures(monkeypatch, "interests_figure")
    out = tmp_path / "i.png"
    ok(invoke("visualize", "interests", run_dir, "--users", "20", "--out", out))
    _png(out)
    assert [ax.get_label() for ax in visualize.panels(figures[0])] == [
        "panel:projection", "panel:entropy"]
    # 20 users x 3 levels x 3 interests points.
    assert sum(len(c.get_offsets()) for c in figures[0].axes[0].collections) == 20 * 3 * 3
    # Without routing the projection is still drawn, and the missing panel is explained.
    r = invoke("visualize", "interests", sum_run, "--users", "5", "--out", tmp_path / "s.pdf")
    assert "routing is unavailable" in ok(r)
    assert (tmp_path / "s.pdf").read_bytes()[:5] == b"%PDF-"
    assert len(visualize.panels(figures[1])) == 1


def test_compare_command_and_pooling(run_dir, sum_run, tmp_path, monkeypatch):
    from mgnm_pyg.insight import figures as visualize

    figures = captured_figures(monkeypatch, "compare_figure")
    out = tmp_path / "c.png"
    ok(invoke("visualize", "compare", run_dir, sum_run, "--out", out, "--device", "cpu"))
    _png(out)
    assert len(visualize.panels(figures[0])) == 3
    # The max-pooled value is the run's own test metric (its default pooling is max).
    test = json.loads((run_dir / "test_metrics.json").read_text())["sampled"]
    pooled = pooling_comparison(run_dir, "ndcg@5", device="cpu")
    assert pooled["max"] == pytest.approx(test["ndcg@5"], abs=1e-6)
    assert 0.0 <= pooled["sum"] <= 1.0
    ok(invoke("visualize", "compare", run_dir, "--no-pooling", "--out", out))
    assert len(visualize.panels(figures[1])) == 2
    failed(invoke("visualize", "compare", run_dir, "--metric", "ndcg@7", "--no-pooling",
                  "--out", out), "no 'sampled' metric 'ndcg@7'", "ndcg@5")


def test_bad_requests_give_clean_errors(run_dir, tmp_path, monkeypatch):
    failed(invoke("visualize", "adjacency", run_dir, "--user", "nobody"),
           "unknown user 'nobody'")
    bare = tmp_path / "bare"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("checkpoints"))
    for command in (["adjacency", bare, "--user", "u003"], ["interests", bare]):
        failed(invoke("visualize", *command), "checkpoint not found")
    failed(invoke("visualize", "compare", tmp_path), "config.json: not found")
    from mgnm_pyg.data.dataset import PreparedDataset

    monkeypatch.setattr(PreparedDataset, "sequence", lambda self, u: np.zeros(0, np.int64))
    failed(invoke("visualize", "adjacency", run_dir, "--user", "u003"), "empty history")


def test_training_command_draws_each_levels_logged_loss(run_dir, sum_run, tmp_path,
                                                        monkeypatch):
    from mgnm_pyg.insight import figures as visualize

    figures = captured_figures(monkeypatch, "training_figure")
    out = tmp_path / "t.svg"
    ok(invoke("visualize", "training", run_dir, sum_run, "--metric", "hit@5", "--out", out))
    assert out.read_text().lstrip().startswith("<?xml")
    loss_ax, valid_ax = visualize.panels(figures[0])
    rows = {r: json.loads((r / "metrics.jsonl").read_text().splitlines()[0])
            for r in (run_dir, sum_run)}
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    for run, levels in ((run_dir, 3), (sum_run, 2)):  # L=2 and L=1: one line per level
        for level in range(levels):
            line = lines[f"{run.name}: level {level}"]
            assert list(line.get_xdata()) == [1]
            assert line.get_ydata()[0] == pytest.approx(
                rows[run]["train_parts"][f"bce_level{level}"])
        assert f"{run.name}: level {levels}" not in lines
    valid = {line.get_label(): line for line in valid_ax.get_lines()}
    assert valid[run_dir.name].get_ydata()[0] == pytest.approx(rows[run_dir]["valid"]["hit@5"])

    # a run without per-level parts (an older run, or a one-level model) draws its total
    older = tmp_path / "older"
    older.mkdir()
    row = {k: v for k, v in rows[run_dir].items() if k != "train_parts"}
    (older / "metrics.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(
        {**row, "epoch": 2, "train_loss": 0.5}) + "\n")
    ok(invoke("visualize", "training", older, "--out", tmp_path / "o.png"))
    (total,) = visualize.panels(figures[1])[0].get_lines()[:1]
    assert list(total.get_xdata()) == [1, 2] and total.get_ydata()[1] == 0.5

    (older / "metrics.jsonl").write_text(json.dumps(row) + "\n{not json\n")
    failed(invoke("visualize", "training", older), "metrics.jsonl, line 2: not valid JSON")
    (older / "metrics.jsonl").unlink()
    failed(invoke("visualize", "training", older), "no finished epoch yet")
