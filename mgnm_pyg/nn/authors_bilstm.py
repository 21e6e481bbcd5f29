r"""The BiLSTM of the authors' capsule network: one ``K*d``-wide sequence per history.

Our :class:`~mgnm_pyg.nn.bilstm.MaskedBiLSTM` (SPEC) runs over each capsule's sequence
``Z_k`` separately (``B*K`` sequences of width ``d``). The authors' code instead feeds
the BiLSTM all ``K`` capsules of a position at once: a sequence of ``m`` steps, each of
``K*d`` features, one TF ``BasicLSTMCell`` of ``d`` units per direction (forget bias 1,
added as a constant, not a variable), and a dense layer without bias from
``[h_fwd || h_bwd]`` (``2d``) back to ``K*d``. That is :class:`JointBiLSTM`.

Where their code has bugs rather than choices, this module does not follow it:

- it runs both directions over the whole right-aligned 100-step window, padding
  included, so the forward state reaches the first item after ``100 - n`` padding steps
  (and the padding rows are not zero at levels above 0: ``leaky_relu(b)``);
- it reshapes ``[B, K, 100, d]`` to ``[B, 100, K*d]`` without a transpose, so one "step"
  holds pieces of several positions of one capsule;
- it concatenates the time-major outputs and reshapes them batch-major, so the outputs
  of one record come from other records of the batch.

Each of the three changes the output (a record's interests would depend on ``max_len``,
on the interleaving, and on its batch-mates), and the last would make a user's
recommendations depend on who else is in the batch, so none is reproduced; how much
they move the authors' accuracy is not measured (``benchmarks/RESULTS.md``, "The
authors' MGNM on Toys", is this module's reading). Here the steps are the
history's positions in time order, ``x_j = [z_1j || .. || z_Kj]``, and each direction
runs over the valid steps only (the backward one reversed within the length).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .bilstm import reverse_within_length

__all__ = ["JointBiLSTM", "tf_lstm"]

#: ``forget_bias`` of TF's ``BasicLSTMCell`` (its default, kept by the authors' code).
FORGET_BIAS = 1.0


def tf_lstm(x: Tensor, kernel: Tensor, bias: Tensor, forget_bias: float = FORGET_BIAS
            ) -> Tensor:
    r"""One-direction LSTM as TF's ``BasicLSTMCell``, from zero states, over all steps.

    With ``(i, j, f, o) = [x_t || h_{t-1}] W + b`` (TF's gate order):
    :math:`c_t = c_{t-1}\,\sigma(f + 1) + \sigma(i)\tanh(j)`,
    :math:`h_t = \tanh(c_t)\,\sigma(o)`.

    Shapes:
        - x: ``[S, m, F]``; kernel: ``[F + H, 4H]``; bias: ``[4H]``; output: ``[S, m, H]``
    """
    s, m, width = x.shape
    hidden = kernel.size(1) // 4
    gates_x = x @ kernel[:width] + bias
    w_h = kernel[width:]
    h = c = x.new_zeros(s, hidden)
    outputs = []
    for t in range(m):
        i, j, f, o = (gates_x[:, t] + h @ w_h).chunk(4, -1)
        c = c * torch.sigmoid(f + forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        outputs.append(h)
    return torch.stack(outputs, 1)


class JointBiLSTM(nn.Module):
    r"""The authors' BiLSTM over ``[N, m, K*d]`` (module doc), left-aligned histories.

    Initialisation as TF1's defaults: both kernels and the output map Glorot-uniform,
    the gate biases zero.

    Args:
        dim: capsule size ``d`` (the hidden size of each direction).
        n_interests: number of capsules ``K``.

    Shapes:
        - z: ``[N, K, m, d]``; lengths: ``int64 [N]`` (each >= 1); output: ``[N, K, m, d]``,
          zero at padded steps
    """

    def __init__(self, dim: int, n_interests: int) -> None:
        super().__init__()
        self.dim, self.n_interests = dim, n_interests
        width = dim * n_interests
        self.fw_kernel = nn.Parameter(torch.empty(width + dim, 4 * dim))
        self.fw_bias = nn.Parameter(torch.empty(4 * dim))
        self.bw_kernel = nn.Parameter(torch.empty(width + dim, 4 * dim))
        self.bw_bias = nn.Parameter(torch.empty(4 * dim))
        self.out_weight = nn.Parameter(torch.empty(2 * dim, width))  # no bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for kernel in (self.fw_kernel, self.bw_kernel, self.out_weight):
            nn.init.xavier_uniform_(kernel)
        nn.init.zeros_(self.fw_bias)
        nn.init.zeros_(self.bw_bias)

    def forward(self, z: Tensor, lengths: Tensor) -> Tensor:
        n, k, m, d = z.shape
        x = z.transpose(1, 2).reshape(n, m, k * d)
        fw = tf_lstm(x, self.fw_kernel, self.fw_bias)
        bw = tf_lstm(reverse_within_length(x, lengths), self.bw_kernel, self.bw_bias)
        bw = reverse_within_length(bw, lengths)
        out = torch.cat([fw, bw], -1) @ self.out_weight
        valid = torch.arange(m, device=z.device).unsqueeze(0) < lengths.unsqueeze(1)
        out = out * valid.unsqueeze(-1).to(out.dtype)
        return out.view(n, m, k, d).transpose(1, 2)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.dim}, n_interests={self.n_interests})"
