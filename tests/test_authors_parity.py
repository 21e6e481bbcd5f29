"""The ``authors`` preset against a float64 reference of the authors' TensorFlow code.

The reference below is written from their code's arithmetic (SPEC, "The authors' code, as
it computes"), with plain loops: right-aligned histories of ``max_len`` steps (padding
first), the raw adjacency ``sigmoid(x_i . x_j)``, every level from ``X`` with one ``W``
and ``b`` and ``leaky_relu`` 0.2, a capsule map per position, routing from given initial
logits (BiLSTM of the K*d-wide sequence after the first iteration, in time order over the
valid steps, see ``mgnm_pyg/nn/authors_bilstm.py``), ``q_k = o_k``, target attention,
per-level BCE sums, ``theta2 * sum p^2 / 2`` and ``theta1 * sum |A|``. It is fed the
model's own weights.
"""

from __future__ import annotations

import math

import pytest
import torch

from mgnm_pyg.training.config import TrainConfig
from mgnm_pyg.training.settings import build_config

T, D, K, L = 6, 3, 2, 2  # max_len, d, K, graph layers (levels 0..2)
USERS = torch.tensor([0, 1, 2])
HISTORIES = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 0, 0, 0], [2, 0, 0, 0, 0]])  # left-aligned
ITEMS = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 1]])
LABELS = torch.tensor([[1.0, 0.0, 0.0]] * 3)
SEED = 11


def _authors_model(**changes):
    cfg = build_config(dict(dim=D, n_interests=K, n_layers=L, max_len=T, **changes),
                       preset="authors")
    torch.manual_seed(0)
    model = cfg.build_model(4, 10).double()
    with torch.no_grad():  # non-zero biases, so that a misplaced one shows
        for name, p in model.named_parameters():
            if "bias" in name:
                p.normal_(0.0, 0.5)
    return model


def _drawn_logits(n_rows: int, m: int) -> torch.Tensor:
    """The routing logits the model draws after ``torch.manual_seed(SEED)``."""
    torch.manual_seed(SEED)
    return torch.nn.init.trunc_normal_(torch.empty(n_rows, K, m, dtype=torch.float64),
                                       0.0, 1.0, -2.0, 2.0)


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def squash(v):
    n2 = dot(v, v)
    return [x * n2 / (1 + n2) / math.sqrt(n2 + 1e-9) for x in v]


def tf_cell(x, h, c, kernel, bias):
    """TF BasicLSTMCell: gates i, j, f, o of [x, h] @ kernel + bias; forget bias 1."""
    inp = x + h
    g = [sum(inp[r] * kernel[r][col] for r in range(len(inp))) + bias[col]
         for col in range(4 * D)]
    i, j, f, o = g[:D], g[D:2 * D], g[2 * D:3 * D], g[3 * D:]
    c = [c[u] * sig(f[u] + 1.0) + sig(i[u]) * math.tanh(j[u]) for u in range(D)]
    h = [math.tanh(c[u]) * sig(o[u]) for u in range(D)]
    return h, c


def bilstm(z, valid, w):
    """Their BiLSTM on z[k][t] (right-aligned), over the valid steps in time order."""
    steps = [t for t in range(T) if valid[t]]
    xs = {t: [z[k][t][e] for k in range(K) for e in range(D)] for t in steps}
    fw, bw = {}, {}
    h, c = [0.0] * D, [0.0] * D
    for t in steps:
        h, c = tf_cell(xs[t], h, c, w["fw_kernel"], w["fw_bias"])
        fw[t] = h
    h, c = [0.0] * D, [0.0] * D
    for t in reversed(steps):
        h, c = tf_cell(xs[t], h, c, w["bw_kernel"], w["bw_bias"])
        bw[t] = h
    out = [[[0.0] * D for _ in range(T)] for _ in range(K)]
    for t in steps:
        hb = fw[t] + bw[t]
        flat = [sum(hb[r] * w["out_weight"][r][col] for r in range(2 * D))
                for col in range(K * D)]
        for k in range(K):
            out[k][t] = flat[k * D:(k + 1) * D]
    return out


def capsules(h, valid, g, w):
    """Per-position maps, three routing iterations from logits g[k][t]; q_k = o_k."""
    cw = w["capsule_weight"]
    z = [[[sum(cw[t][k * D + e][q] * h[t][q] for q in range(D)) for e in range(D)]
          for t in range(T)] for k in range(K)]
    g = [row[:] for row in g]
    z_iter = z
    for it in range(3):
        coupling = [[0.0] * T for _ in range(K)]
        for t in range(T):
            if valid[t]:
                ex = [math.exp(g[k][t]) for k in range(K)]
                for k in range(K):
                    coupling[k][t] = ex[k] / sum(ex)
        source = z_iter if it < 2 else z
        o = [squash([sum(coupling[k][t] * source[k][t][e] for t in range(T))
                     for e in range(D)]) for k in range(K)]
        if it == 2:
            return o
        for k in range(K):
            for t in range(T):
                g[k][t] += dot(z_iter[k][t], o[k])
        if it == 0:
            steer = bilstm(z, valid, w)
            z_iter = [[[steer[k][t][e] + z[k][t][e] for e in range(D)] for t in range(T)]
                      for k in range(K)]
        else:
            z_iter = z
    raise AssertionError("unreachable")


def reference(weights, variables, histories, items, labels, logits):
    """Per-record level scores [B][L+1][C], the loss and its L1 part, as their code;
    ``variables`` are all trainable variables (for the L2 term)."""
    v = weights["items"]
    w, b = weights["W"], weights["b"]
    scores, bce, l1 = [], 0.0, 0.0
    for r, hist in enumerate(histories):
        items_r = [i for i in hist if i != 0]
        n = len(items_r)
        right = [0] * (T - n) + items_r
        valid = [i != 0 for i in right]
        x = [v[i] for i in right]
        a = [[sig(dot(x[i], x[j])) * valid[i] * valid[j] for j in range(T)] for i in range(T)]
        l1 += sum(abs(e) for row in a for e in row)
        ax = [[sum(a[i][j] * x[j][q] for j in range(T)) for q in range(D)] for i in range(T)]
        upper = [[sum(ax[i][q] * w[q][e] for q in range(D)) + b[e] for e in range(D)]
                 for i in range(T)]
        upper = [[u if u > 0 else 0.2 * u for u in row] for row in upper]
        levels = [x] + [upper] * L  # every level from X, one W and b
        per_level = []
        for lev, h in enumerate(levels):
            g = [[0.0] * T for _ in range(K)]
            for k in range(K):
                for j in range(n):
                    g[k][T - n + j] = logits[r * (L + 1) + lev][k][j]
            q = capsules(h, valid, g, weights)
            row = []
            for c, item in enumerate(items[r]):
                s = [dot(q[k], v[item]) for k in range(K)]
                ex = [math.exp(e) for e in s]
                y = sum(ex[k] / sum(ex) * s[k] for k in range(K))
                lab = labels[r][c]
                bce += max(y, 0.0) - y * lab + math.log1p(math.exp(-abs(y)))
                row.append(y)
            per_level.append(row)
        scores.append(per_level)
    l2 = 1e-5 * sum(sum(e * e for e in torch.tensor(p).flatten().tolist())
                    for p in variables) / 2
    return scores, bce + l2 + 1e-5 * l1, 1e-5 * l1


@pytest.mark.parametrize("conv", ["dense", "mp"])
def test_authors_configuration_equals_the_reference_of_their_code(conv):
    model = _authors_model(conv=conv)
    weights = {k: p.detach().tolist() for k, p in model.named_parameters()}
    # Every variable of their graph, and nothing else (the L2 term runs over all of them).
    assert set(weights) == {
        "user_embedding.weight", "item_embedding.weight", "convs.0.weight", "convs.0.bias",
        "extractors.0.capsule_weight", "extractors.0.bilstm.fw_kernel",
        "extractors.0.bilstm.fw_bias", "extractors.0.bilstm.bw_kernel",
        "extractors.0.bilstm.bw_bias", "extractors.0.bilstm.out_weight"}
    short = {k.removeprefix("extractors.0.").removeprefix("bilstm."): p
             for k, p in weights.items()}
    short.update(items=weights["item_embedding.weight"], W=weights["convs.0.weight"],
                 b=weights["convs.0.bias"])
    logits = _drawn_logits(HISTORIES.size(0) * (L + 1), HISTORIES.size(1)).tolist()
    ref_scores, ref_loss, ref_l1 = reference(
        short, list(weights.values()), HISTORIES.tolist(), ITEMS.tolist(), LABELS.tolist(),
        logits)

    torch.manual_seed(SEED)
    enc = model.encode(USERS, HISTORIES)
    levels = model.score(enc.interests, ITEMS)
    torch.testing.assert_close(levels, torch.tensor(ref_scores, dtype=torch.float64),
                               rtol=0, atol=1e-9)
    torch.manual_seed(SEED)
    loss, parts = model.loss(USERS, HISTORIES, ITEMS, LABELS.double())
    assert loss.item() == pytest.approx(ref_loss, abs=1e-9)
    assert parts["l1"].item() * LABELS.numel() == pytest.approx(ref_l1, abs=1e-12)
    torch.manual_seed(SEED)
    predicted = model.predict(USERS, HISTORIES, ITEMS)
    expected = torch.tensor(ref_scores, dtype=torch.float64).max(1).values
    torch.testing.assert_close(predicted, expected, rtol=0, atol=1e-9)


def test_the_reference_depends_on_the_drawn_logits():
    """The routing logits matter (otherwise the parity above would not check them)."""
    model = _authors_model()
    a = _drawn_logits(9, 5)
    torch.manual_seed(SEED + 1)
    model_a = model.predict(USERS, HISTORIES, ITEMS)
    torch.manual_seed(SEED)
    model_b = model.predict(USERS, HISTORIES, ITEMS)
    assert not torch.allclose(model_a, model_b)
    assert a.shape == (9, K, 5)


def test_the_authors_preset_differs_from_the_defaults_only_by_named_switches():
    authors = build_config({}, preset="authors")
    changed = {k for k, v in authors.to_dict().items() if v != getattr(TrainConfig(), k)}
    assert changed == {
        "capsule_maps", "routing_init", "bilstm_mode", "bilstm_layout",
        "interest_activation", "adjacency_user", "adjacency_normalization", "level_input",
        "graph_bias", "theta1", "l2_halved", "batch_size", "epochs", "patience",
        "select_metric", "eval_per_user"}
    assert (authors.batch_size, authors.epochs, authors.patience) == (42, 50, 50)
    assert (authors.theta1, authors.theta2, authors.negatives) == (1e-5, 1e-5, 5)
