"""Sequential capsule network, masked BiLSTM, extractors and target attention."""

from __future__ import annotations

import pytest
import torch

from mgnm_pyg.nn import EXTRACTORS, MaskedBiLSTM, SequentialCapsuleNetwork, build_extractor, squash
from mgnm_pyg.nn.readout import target_attention


def _batch(lengths, d=6, width=None, seed=0, pad_value=0.0):
    """Left-aligned rows; the valid values depend only on (lengths, d, seed), not width."""
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(len(lengths), max(lengths), d, generator=gen)
    m = width or max(lengths)
    h = torch.cat([h, h.new_zeros(len(lengths), m - h.size(1), d)], 1)
    mask = torch.arange(m).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return torch.where(mask.unsqueeze(-1), h, torch.full_like(h, pad_value)), mask


def test_squash_zero_is_finite_and_norm_below_one():
    v = torch.zeros(3, 4, requires_grad=True)
    out = squash(v)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(v.grad).all()
    assert out.abs().max() == 0
    w = torch.tensor([[3.0, 4.0]])  # |w| = 5 -> |squash(w)| = 25/26, same direction
    assert torch.allclose(squash(w), w / 5 * 25 / 26, atol=1e-6)


def _reference_routing(scn, h, n, iters, output="squash"):
    """Plain per-sequence routing without BiLSTM (Eq. 5-9, 11); ``output="mean"``: the
    last iteration's capsule is the coupling-weighted mean of its inputs, unsquashed."""
    k, d = scn.n_interests, scn.dim
    w = scn.capsule_weight.detach().view(d, k, d)
    z = torch.stack([h[:n] @ w[:, i] for i in range(k)])  # [K, n, d]
    g = torch.zeros(k, n)
    for it in range(iters):
        c = torch.softmax(g, 0)
        if it == iters - 1 and output == "mean":
            o = torch.stack([(c[i, :, None] * z[i]).sum(0) / c[i].sum() for i in range(k)])
            break
        o = torch.stack([squash((c[i, :, None] * z[i]).sum(0)) for i in range(k)])
        if it < iters - 1:
            g = g + torch.stack([z[i] @ o[i] for i in range(k)])
    return torch.stack([torch.relu(o[i] @ scn.interest_weight[i].detach()) for i in range(k)])


@pytest.mark.parametrize("output", ["squash", "mean"])
def test_routing_matches_plain_reference_with_padding(output):
    torch.manual_seed(0)
    scn = SequentialCapsuleNetwork(6, n_interests=3, routing_iters=3, use_bilstm=False,
                                   capsule_output=output)
    lengths = [4, 1, 7]
    h, mask = _batch(lengths, pad_value=5.0)  # garbage in padded rows must not matter
    out = scn(h, mask)
    for row, n in enumerate(lengths):
        ref = _reference_routing(scn, h[row], n, 3, output)
        assert torch.allclose(out[row], ref, atol=1e-5)


def test_capsule_output_mean_changes_the_interests_and_is_not_norm_bounded():
    torch.manual_seed(0)
    squashed = SequentialCapsuleNetwork(6, n_interests=3, use_bilstm=False,
                                        interest_activation="identity")
    mean = SequentialCapsuleNetwork(6, n_interests=3, use_bilstm=False,
                                    interest_activation="identity", capsule_output="mean")
    mean.load_state_dict(squashed.state_dict())
    h, mask = _batch([5, 9], seed=1)
    h = 10 * h  # large inputs: the squash saturates at norm 1, the mean keeps their scale
    a, b = squashed(h, mask), mean(h, mask)
    assert a.norm(dim=-1).max() < 1.0
    assert b.norm(dim=-1).max() > 2.0
    with pytest.raises(ValueError, match="capsule_output"):
        SequentialCapsuleNetwork(6, capsule_output="sum")


def test_masked_bilstm_matches_per_sequence_lstm_and_never_leaks():
    torch.manual_seed(0)
    lstm = MaskedBiLSTM(5, packed=True)
    lengths = [3, 1, 6]
    x, mask = _batch(lengths, d=5)
    out = lstm(x, mask.sum(1))
    for row, n in enumerate(lengths):
        seq = x[row : row + 1, :n]
        fwd = lstm.forward_lstm(seq)[0]
        bwd = lstm.backward_lstm(seq.flip(1))[0].flip(1)
        expected = lstm.out(torch.cat([fwd, bwd], -1))[0]
        assert torch.allclose(out[row, :n], expected, atol=1e-5)
    assert out[~mask].abs().max() == 0
    # Garbage and extra padding change nothing at valid steps, on both code paths.
    x_garbage, _ = _batch(lengths, d=5, width=11, pad_value=-3.0)
    for packed in (True, False):
        lstm.packed = packed
        other = lstm(x_garbage, mask.sum(1))
        assert torch.allclose(other[:, :6][mask], out[mask], atol=1e-5)


def test_capsule_network_padding_invariance_with_bilstm():
    scn = SequentialCapsuleNetwork(6, n_interests=4, routing_iters=3, use_bilstm=True)
    h, mask = _batch([2, 5, 1])
    wide, wide_mask = _batch([2, 5, 1], width=20, pad_value=7.0)
    assert torch.allclose(scn(h, mask), scn(wide, wide_mask), atol=1e-5)
    # The BiLSTM matters: removing it changes the interests.
    no_lstm = SequentialCapsuleNetwork(6, n_interests=4, routing_iters=3, use_bilstm=False)
    no_lstm.load_state_dict(scn.state_dict(), strict=False)
    assert not torch.allclose(scn(h, mask), no_lstm(h, mask), atol=1e-4)
    assert not any("lstm" in name for name, _ in no_lstm.named_parameters())


def test_capsule_gradients_reach_all_weights():
    scn = SequentialCapsuleNetwork(6, n_interests=2, routing_iters=3, use_bilstm=True)
    h, mask = _batch([3, 4])
    scn(h, mask).sum().backward()
    for name, p in scn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_extractors_shape_and_padding_invariance(name):
    torch.manual_seed(0)
    extractor = build_extractor(name, 6, 3).eval()
    h, mask = _batch([2, 5, 1])
    wide, wide_mask = _batch([2, 5, 1], width=9, pad_value=4.0)
    out = extractor(h, mask)
    assert out.shape == (3, 3, 6)
    assert torch.allclose(out, extractor(wide, wide_mask), atol=1e-5)


def test_extractors_differ():
    h, mask = _batch([4, 3])
    outs = {}
    for name in EXTRACTORS:
        torch.manual_seed(0)
        outs[name] = build_extractor(name, 6, 3)(h, mask)
    names = sorted(outs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.allclose(outs[a], outs[b], atol=1e-4), (a, b)


def test_target_attention_matches_loop_and_shared_candidates():
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 3, 4, 5, generator=gen)  # [B, L+1, K, d]
    items = torch.randn(2, 6, 5, generator=gen)
    y = target_attention(q, items)
    assert y.shape == (2, 3, 6)
    for b in range(2):
        for level in range(3):
            for c in range(6):
                s = q[b, level] @ items[b, c]
                a = torch.softmax(s, 0)
                expected = (a[:, None] * q[b, level]).sum(0) @ items[b, c]
                assert abs(y[b, level, c] - expected) < 1e-5
    shared = items[0]
    assert torch.allclose(target_attention(q, shared), target_attention(q, shared.expand(2, 6, 5)))


def test_route_coupling_sums_to_one_over_interests_at_valid_positions():
    scn = SequentialCapsuleNetwork(6, n_interests=3, routing_iters=3, use_bilstm=True)
    h, mask = _batch([2, 5, 1])
    interests, coupling = scn.route(h, mask)
    assert coupling.shape == (3, 3, 5)
    assert torch.allclose(interests, scn(h, mask))
    sums = coupling.sum(1)
    assert torch.allclose(sums[mask], torch.ones(int(mask.sum())), atol=1e-6)
    assert torch.all(sums[~mask] == 0)


@pytest.mark.parametrize("name", ["capsule", "sum", "bilstm"])
def test_interest_activation_none_is_relu_free(name):
    """With the same weights, relu(interests without activation) = interests with ReLU."""
    h, mask = _batch([4, 3, 6])
    torch.manual_seed(0)
    with_relu = build_extractor(name, 6, 3, interest_activation="relu").eval()
    torch.manual_seed(0)
    linear = build_extractor(name, 6, 3, interest_activation="none").eval()
    raw = linear(h, mask)
    assert (raw < 0).any()  # without the ReLU, interests take negative values
    assert torch.allclose(torch.relu(raw), with_relu(h, mask), atol=1e-6)
    with pytest.raises(ValueError, match="interest_activation"):
        build_extractor(name, 6, 3, interest_activation="tanh")


def test_bilstm_mode_routing_trains_the_bilstm_through_the_logits():
    h, mask = _batch([2, 5, 1])
    wide, wide_mask = _batch([2, 5, 1], width=9, pad_value=3.0)
    torch.manual_seed(0)
    spec = SequentialCapsuleNetwork(6, n_interests=3, bilstm_mode="interests")
    routing = SequentialCapsuleNetwork(6, n_interests=3, bilstm_mode="routing")
    routing.load_state_dict(spec.state_dict())
    out = routing(h, mask)
    assert not torch.allclose(out, spec(h, mask), atol=1e-4)
    assert torch.allclose(out, routing(wide, wide_mask), atol=1e-5)  # padding-invariant
    # The final capsules sum the original Z, weighted by couplings the BiLSTM steered.
    no_lstm = SequentialCapsuleNetwork(6, n_interests=3, use_bilstm=False)
    no_lstm.load_state_dict(spec.state_dict(), strict=False)
    assert not torch.allclose(out, no_lstm(h, mask), atol=1e-4)
    out.sum().backward()
    for name, p in routing.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="bilstm_mode"):
        SequentialCapsuleNetwork(6, bilstm_mode="both")
