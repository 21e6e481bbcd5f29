"""The packed BiLSTM: its hand-written backward against PyTorch's own packed LSTM."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mgnm_pyg.nn import MaskedBiLSTM
from mgnm_pyg.nn.bilstm import packed_lstm


def _reference(lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, reverse: bool):
    """PyTorch's packed LSTM; the reverse direction on each sequence flipped in its length."""
    if reverse:
        x = _flip_within(x, lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.size(1))[0]
    return _flip_within(out, lengths) if reverse else out


def _flip_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    rows = zip(x, lengths.tolist(), strict=True)
    return torch.stack([torch.cat([row[:n].flip(0), row[n:]]) for row, n in rows])


@pytest.mark.parametrize("reverse", [False, True])
def test_packed_lstm_values_and_gradients_match_torch(reverse):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 7, batch_first=True).double()
    lengths = torch.tensor([3, 1, 6, 6, 2, 1])  # ties and length-1 sequences
    x = torch.randn(6, 8, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 8, 7, dtype=torch.float64)  # a loss that weighs every output
    ours = packed_lstm(lstm, x, lengths, reverse=reverse)
    theirs = _reference(lstm, x, lengths, reverse)
    torch.testing.assert_close(ours, theirs)
    inputs = [x, *lstm.parameters()]
    ours_grad = torch.autograd.grad((ours * weight).sum(), inputs)
    theirs_grad = torch.autograd.grad((theirs * weight).sum(), inputs)
    for a, b in zip(ours_grad, theirs_grad, strict=True):
        torch.testing.assert_close(a, b)


def test_masked_bilstm_packed_passes_gradcheck_and_ignores_padding():
    torch.manual_seed(1)
    lstm = MaskedBiLSTM(3, hidden=4, packed=True).double()
    lengths = torch.tensor([2, 4, 1])
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: lstm(inp, lengths), (x,))
    # No gradient reaches a padded step, and the packed and fused paths agree.
    lstm(x, lengths).sum().backward()
    padded = torch.arange(5).unsqueeze(0) >= lengths.unsqueeze(1)
    assert x.grad[padded].abs().max() == 0
    packed_out = lstm(x, lengths)
    lstm.packed = False
    torch.testing.assert_close(lstm(x, lengths), packed_out)


def test_reverse_within_length_matches_flips_and_its_gradient_is_the_same_reordering():
    torch.manual_seed(2)
    from mgnm_pyg.nn.bilstm import reverse_within_length

    lengths = torch.tensor([3, 1, 5, 2])
    x = torch.randn(4, 5, 3, dtype=torch.float64, requires_grad=True)
    out = reverse_within_length(x, lengths)
    torch.testing.assert_close(out, _flip_within(x, lengths), rtol=0, atol=0)
    weight = torch.randn(4, 5, 3, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    torch.testing.assert_close(grad, _flip_within(weight, lengths), rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda inp: reverse_within_length(inp, lengths), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equal_length_bidirectional_call_equals_the_two_direction_path(dtype):
    torch.manual_seed(3)
    lstm = MaskedBiLSTM(4, hidden=5, packed=False).to(dtype)
    x = torch.randn(6, 3, 4, dtype=dtype, requires_grad=True)
    lengths = torch.full((6,), 3)
    weight = torch.randn(6, 3, 4, dtype=dtype)
    outs = []
    for one_call in (True, False):
        lstm.equal_lengths = one_call
        out = lstm(x, lengths)
        outs.append((out, torch.autograd.grad((out * weight).sum(), [x, *lstm.parameters()])))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1], strict=True):
        torch.testing.assert_close(a, b)
    # against PyTorch's packed LSTM with the same weights, each direction on its own
    fwd = _reference(lstm.forward_lstm, x, lengths, reverse=False)
    bwd = _reference(lstm.backward_lstm, x, lengths, reverse=True)
    torch.testing.assert_close(outs[0][0], lstm.out(torch.cat([fwd, bwd], -1)))
