"""The BiLSTM of the sequential capsule network (Eq. 10) over left-aligned padded sequences.

On the CPU most of an MGNM training step is this BiLSTM: it runs over every capsule of
every level of every user (``B * (L+1) * K`` short sequences). Batches of real histories
are mostly padding, so the sequences are packed: :func:`packed_lstm` steps only the
sequences still running, and its recurrence has a hand-written backward pass
(:class:`_PackedRecurrence`), because autograd would record a dozen small operations per
step and zero-pad the gradient of every shrinking state slice.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["MaskedBiLSTM", "packed_lstm", "reverse_within_length"]


def reverse_within_length(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[s]`` steps of each sequence; padded steps stay in place.

    The reordering is a permutation that is its own inverse, so the gradient is the same
    reordering of the output gradient: rows are picked with ``index_select`` both ways,
    where ``gather`` would scatter-add its gradient back element by element.

    Shapes:
        - x: ``[S, m, d]``; lengths: ``[S]``; output: ``[S, m, d]``
    """
    s, m = x.shape[:2]
    steps = torch.arange(m, device=x.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    rows = (index + m * torch.arange(s, device=x.device).unsqueeze(1)).reshape(-1)
    return _SelfInversePermutation.apply(x, rows)


class _SelfInversePermutation(torch.autograd.Function):
    """Rows ``x[rows]`` of ``x`` flattened to ``[S * m, d]``, for a permutation ``rows``
    that is its own inverse (its gradient is then ``grad[rows]``)."""

    @staticmethod
    def forward(ctx, x: Tensor, rows: Tensor) -> Tensor:
        ctx.save_for_backward(rows)
        return x.reshape(-1, x.size(-1)).index_select(0, rows).view(x.shape)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (rows,) = ctx.saved_tensors
        return grad.reshape(-1, grad.size(-1)).index_select(0, rows).view(grad.shape), None


class _PackedRecurrence(torch.autograd.Function):
    r"""The LSTM recurrence over packed rows, given the input projections.

    ``gates_x`` holds ``x_t W_{ih}^T + b`` for the running sequences of each step, step
    after step (``batch_sizes[t]`` rows for step ``t``, non-increasing, the running
    sequences first). Each step computes, in PyTorch's gate order ``i, f, g, o``,

    .. math::
        (i, f, g, o) = (\sigma, \sigma, \tanh, \sigma)(\mathrm{gates}_x + h_{t-1} W_{hh}^T),
        \quad c_t = f c_{t-1} + i g, \quad h_t = o \tanh(c_t)

    from zero states. Returns the packed ``h`` (same row order as ``gates_x``).

    Shapes:
        - gates_x: ``[P, 4H]``; w_hh: ``[4H, H]``; output: ``[P, H]``
    """

    @staticmethod
    def forward(ctx, gates_x: Tensor, w_hh: Tensor, batch_sizes: list[int]) -> Tensor:
        hidden = w_hh.size(1)
        w_t = w_hh.t()
        acts = torch.empty_like(gates_x)  # i, f, g, o after their nonlinearities
        cells, tanh_cells, outputs = gates_x.new_empty(3, gates_x.size(0), hidden).unbind(0)
        h = c = gates_x.new_zeros(batch_sizes[0], hidden)
        start = 0
        for b in batch_sizes:
            rows = slice(start, start + b)
            gates = torch.addmm(gates_x[rows], h[:b], w_t)
            a = acts[rows]
            torch.sigmoid(gates, out=a)
            a[:, 2 * hidden : 3 * hidden] = torch.tanh(gates[:, 2 * hidden : 3 * hidden])
            i, f, g, o = a.chunk(4, 1)
            c = torch.addcmul(i * g, f, c[:b], out=cells[rows])
            h = torch.mul(o, torch.tanh(c, out=tanh_cells[rows]), out=outputs[rows])
            start += b
        ctx.batch_sizes = batch_sizes
        ctx.save_for_backward(w_hh, acts, cells, tanh_cells, outputs)
        return outputs

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        w_hh, acts, cells, tanh_cells, outputs = ctx.saved_tensors
        sizes = ctx.batch_sizes
        # Row r of step t continues row r - sizes[t-1] of step t - 1; the first step's rows
        # continue a zero state (index P of the zero-padded tensors).
        total = acts.size(0)
        shift = torch.tensor([total, *sizes[:-1]], device=acts.device).repeat_interleave(
            torch.tensor(sizes, device=acts.device))
        prev = torch.arange(total, device=acts.device) - shift
        prev = torch.where(prev < 0, total, prev)
        c_prev = torch.cat([cells, cells.new_zeros(1, cells.size(1))])[prev]
        # Every factor that does not depend on the recurrence, for all rows at once:
        # dc = dh * o (1 - tanh^2 c) + dc_{t+1} f_{t+1}; the gate gradients are dc times
        # (g i(1-i), c_{t-1} f(1-f), i(1-g^2)) and dh times tanh(c) o(1-o).
        i, f, g, o = acts.chunk(4, 1)
        dc_dh = o * (1 - tanh_cells * tanh_cells)
        factors = torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g),
                             tanh_cells * o * (1 - o)], 1)
        grad_gates = torch.empty_like(acts)
        dh_next = dc_next = None  # gradients reaching step t from step t + 1
        start = total
        for t in range(len(sizes) - 1, -1, -1):
            b = sizes[t]
            start -= b
            rows = slice(start, start + b)
            dh = grad_out[rows] if dh_next is None else grad_out[rows] + _padded(dh_next, b)
            dc = dh * dc_dh[rows]
            if dc_next is not None:
                dc = dc + _padded(dc_next, b)
            dg = torch.mul(torch.cat([dc, dc, dc, dh], 1), factors[rows], out=grad_gates[rows])
            if t > 0:
                dh_next = dg @ w_hh
                dc_next = dc * f[rows]
        grad_w = None
        if ctx.needs_input_grad[1]:  # h_{t-1} of every row is only needed for W_hh
            h_prev = torch.cat([outputs, outputs.new_zeros(1, outputs.size(1))])[prev]
            grad_w = grad_gates.t() @ h_prev
        return grad_gates, grad_w, None


def _padded(x: Tensor, rows: int) -> Tensor:
    """``x`` (``[b, H]``, ``b <= rows``) with zero rows appended up to ``rows``."""
    if x.size(0) == rows:
        return x
    return torch.cat([x, x.new_zeros(rows - x.size(0), x.size(1))])


def _packed_direction(lstm: nn.LSTM, x: Tensor, lengths: Tensor, reverse: bool = False
                      ) -> tuple[Tensor, Tensor]:
    """Packed outputs ``[P, hidden]`` of one direction, and the flat index ``s * m + j`` of
    the (sequence, position) each packed row belongs to."""
    m = x.size(1)
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order]
    running = sorted_lengths.unsqueeze(0) > torch.arange(m, device=x.device).unsqueeze(1)
    batch_sizes = [b for b in running.sum(1).tolist() if b > 0]  # non-increasing
    # Input projections of the valid steps only, in step-major (packed) order.
    step, row = running.nonzero(as_tuple=True)
    if reverse:
        step = sorted_lengths[row] - 1 - step  # position read at this step of the recurrence
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
    seq = order[row]  # sequence index in x of each packed row
    gates_x = torch.addmm(bias, x[seq, step], lstm.weight_ih_l0.t())
    return _PackedRecurrence.apply(gates_x, lstm.weight_hh_l0, batch_sizes), seq * m + step


def packed_lstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor, reverse: bool = False) -> Tensor:
    """One-layer LSTM over left-aligned sequences, stepping only the sequences still running.

    Same result as packing, with the weights of ``lstm``; written out because the packed
    kernels of PyTorch copy the whole state at every step on the CPU. Needs ``lengths``
    on the host. ``reverse=True`` runs each sequence from its last valid step to its
    first (the backward direction of a BiLSTM). Outputs at padded steps are zero.

    Shapes:
        - x: ``[S, m, d]``; lengths: ``[S]``; output: ``[S, m, hidden]``
    """
    s, m = x.shape[:2]
    packed, index = _packed_direction(lstm, x, lengths, reverse)
    flat = x.new_zeros(s * m, lstm.hidden_size)
    return flat.index_copy(0, index, packed).view(s, m, lstm.hidden_size)


class MaskedBiLSTM(nn.Module):
    r"""Bidirectional LSTM over left-aligned padded sequences, output mapped back to ``d``.

    .. math::
        \mathrm{BiLSTM}(Z)_j = [\overrightarrow{h}_j \,\|\, \overleftarrow{h}_j]\,W_o + b_o

    Padded steps never reach valid steps. On the CPU, when over half the steps are padding,
    the sequences are packed; otherwise the backward direction runs on each sequence
    reversed within its length, which needs no lengths on the host (the forward direction
    is causal, so trailing padding cannot reach valid steps) and keeps cuDNN's fused
    kernel. When no sequence is padded (most length-bucketed batches), one bidirectional
    LSTM call does both directions. Outputs at padded steps are zero.

    Args:
        dim: input and output size ``d``.
        hidden: hidden size per direction (default ``d``; the paper does not give it).
        packed: force packed (True) or reversal (False); None picks by device and padding.

    Shapes:
        - x: ``[S, m, d]``; lengths: ``int64 [S]`` (each >= 1); output: ``[S, m, d]``
    """

    def __init__(self, dim: int, hidden: int | None = None, packed: bool | None = None) -> None:
        super().__init__()
        self.hidden = hidden or dim
        self.packed = packed
        self.equal_lengths = True  # the one-call path when no sequence is padded (CPU)
        # Two one-directional LSTMs rather than one bidirectional module, so that the
        # unpacked path can feed the backward direction its own reversed input.
        self.forward_lstm = nn.LSTM(dim, self.hidden, batch_first=True)
        self.backward_lstm = nn.LSTM(dim, self.hidden, batch_first=True)
        self.out = nn.Linear(2 * self.hidden, dim)

    def reset_parameters(self) -> None:
        """PyTorch defaults for the LSTMs and the output map."""
        self.forward_lstm.reset_parameters()
        self.backward_lstm.reset_parameters()
        self.out.reset_parameters()

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        packed = self.packed
        if packed is None:
            # On the CPU the stepped packed LSTM wins once over half the padded steps are
            # padding; on denser batches (and on GPUs) the fused kernel does.
            packed = x.device.type == "cpu" and 2 * int(lengths.sum()) < lengths.numel() * x.size(1)
        if packed:
            return self._packed_forward(x, lengths)
        if self.equal_lengths and x.device.type == "cpu" and bool((lengths == x.size(1)).all()):
            return self._equal_length_forward(x)
        fwd = self.forward_lstm(x)[0]
        bwd = self.backward_lstm(reverse_within_length(x, lengths))[0]
        bwd = reverse_within_length(bwd, lengths)
        mask = torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
        return self.out(torch.cat([fwd, bwd], -1)) * mask.unsqueeze(-1).to(x.dtype)

    def _equal_length_forward(self, x: Tensor) -> Tensor:
        # No padding: reversing within the length is reversing the whole sequence, which
        # a bidirectional LSTM kernel does itself, both directions in one call.
        weights = [p for lstm in (self.forward_lstm, self.backward_lstm) for p in (
            lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
        zeros = x.new_zeros(2, x.size(0), self.hidden)
        out = torch._VF.lstm(x, (zeros, zeros), weights, True, 1, 0.0, self.training, True,
                             True)[0]
        return self.out(out)

    def _packed_forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        # The output map runs on the valid steps only: [h_f || h_b] W_o^T is h_f W_f^T +
        # h_b W_b^T, each direction's term added at its own rows' positions.
        s, m, _ = x.shape
        fwd, fwd_index = _packed_direction(self.forward_lstm, x, lengths)
        bwd, bwd_index = _packed_direction(self.backward_lstm, x, lengths, reverse=True)
        w_fwd, w_bwd = self.out.weight.split(self.hidden, dim=1)
        flat = x.new_zeros(s * m, self.out.out_features)
        flat = flat.index_add(0, fwd_index, fwd @ w_fwd.t())
        flat = flat.index_add(0, bwd_index, torch.addmm(self.out.bias, bwd, w_bwd.t()))
        return flat.view(s, m, -1)
