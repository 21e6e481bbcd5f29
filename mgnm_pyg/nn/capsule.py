"""Sequential capsule network (SCN) of MGNM: routing, the BiLSTM of Eq. 10, interests (Eq. 11).

The BiLSTM itself (padding-safe and packed on the CPU) is in :mod:`mgnm_pyg.nn.bilstm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bilstm import MaskedBiLSTM

__all__ = [
    "BILSTM_MODES",
    "INTEREST_ACTIVATIONS",
    "SequentialCapsuleNetwork",
    "reset_capsule_weight",
    "squash",
]


def squash(v: Tensor, eps: float = 1e-9) -> Tensor:
    r"""Capsule squash along the last axis.

    .. math::
        \mathrm{squash}(v) = \frac{\|v\|^2}{1 + \|v\|^2} \frac{v}{\sqrt{\|v\|^2 + \epsilon}}

    ``eps`` keeps ``v = 0`` finite (value and gradient).

    Shapes:
        - v: ``[..., d]``; output: ``[..., d]``
    """
    norm2 = (v * v).sum(-1, keepdim=True)
    return v * (norm2 / (1.0 + norm2) / torch.sqrt(norm2 + eps))


INTEREST_ACTIVATIONS = ("relu", "none")
BILSTM_MODES = ("interests", "routing")


def interest_activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The map applied to ``o_k W'_k`` in Eq. 11: ``"relu"`` (the paper) or ``"none"``."""
    if name == "relu":
        return F.relu
    if name == "none":
        return nn.Identity()
    raise ValueError(f"interest_activation must be one of {INTEREST_ACTIVATIONS}, got {name!r}")


def reset_capsule_weight(weight: Tensor, dim: int) -> None:
    """Glorot-uniform init of per-capsule ``d x d`` maps stored side by side in ``weight``.

    The bound is that of one ``d x d`` block (fan-in = fan-out = ``d``), the TF1 default
    of the authors' code applied to each capsule's own matrix.
    """
    bound = math.sqrt(6.0 / (2 * dim))
    nn.init.uniform_(weight, -bound, bound)


class SequentialCapsuleNetwork(nn.Module):
    r"""Sequential capsule network: dynamic routing with a BiLSTM (Eq. 5-11).

    With ``Z_k = H W_k`` and routing logits ``g`` starting at zero, each of the ``tau``
    iterations computes

    .. math::
        c_{:j} = \mathrm{softmax}_k(g_{:j}),\quad v_k = \sum_j c_{kj} z_{kj},\quad
        o_k = \mathrm{squash}(v_k),\quad g_{kj} \mathrel{+}= o_k \cdot z_{kj}

    (no logit update after the last iteration; ``c = 0`` at padded ``j``). After the
    first iteration ``Z_k <- Z_k + BiLSTM(Z_k)`` (Eq. 10). Interests are
    ``q_k = ReLU(o_k W'_k)`` (Eq. 11) with ``interest_activation="relu"``, or
    ``q_k = o_k W'_k`` with ``"none"``.

    Non-final iterations see ``Z`` with its gradient stopped, as in the authors' code
    (and MIND/ComiRec), so gradients reach ``Z`` only through the final ``v``.
    The logit update of the first iteration uses the ``Z`` of that iteration (before
    Eq. 10); the paper does not order the two.

    All rows go through one call: for MGNM, ``N = B * (L + 1)`` (every level of every
    user), and the BiLSTM runs once over all ``N * K`` capsule sequences.

    Args:
        dim: feature size ``d``.
        n_interests: number of capsules ``K`` (default 4).
        routing_iters: ``tau`` (default 3).
        use_bilstm: apply Eq. 10 (False is the "w/o BiLSTM" ablation).
        interest_activation: ``"relu"`` (Eq. 11) or ``"none"`` (the authors' code
            applies no ReLU to the interests; see :class:`~mgnm_pyg.models.MGNM`).
        bilstm_mode: ``"interests"`` (SPEC: the updated ``Z`` serves the remaining
            iterations and the final ``v``) or ``"routing"`` (the authors' code: the
            BiLSTM output only enters the routing-logit updates, the final ``v`` sums the
            original ``Z``, and the BiLSTM is trained through the logits).
        eps: squash epsilon.

    Shapes:
        - h: ``[N, m, d]``; mask: ``bool [N, m]`` (every row has a valid step)
        - output: ``[N, K, d]``
    """

    def __init__(
        self,
        dim: int,
        n_interests: int = 4,
        routing_iters: int = 3,
        use_bilstm: bool = True,
        interest_activation: str = "relu",
        bilstm_mode: str = "interests",
        eps: float = 1e-9,
    ) -> None:
        super().__init__()
        if bilstm_mode not in BILSTM_MODES:
            raise ValueError(f"bilstm_mode must be one of {BILSTM_MODES}, got {bilstm_mode!r}")
        self.bilstm_mode = bilstm_mode
        self.activation = interest_activation_fn(interest_activation)
        self.dim = dim
        self.n_interests = n_interests
        self.routing_iters = routing_iters
        self.eps = eps
        # The K capsule maps W_k are one [d, K*d] matrix, so Z is a single matmul.
        self.capsule_weight = nn.Parameter(torch.empty(dim, n_interests * dim))
        self.interest_weight = nn.Parameter(torch.empty(n_interests, dim, dim))
        self.bilstm = MaskedBiLSTM(dim) if use_bilstm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform per-capsule ``W_k`` and ``W'_k`` (each d x d); BiLSTM defaults."""
        reset_capsule_weight(self.capsule_weight, self.dim)
        reset_capsule_weight(self.interest_weight, self.dim)
        if self.bilstm is not None:
            self.bilstm.reset_parameters()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.route(h, mask)[0]

    def route(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Interests ``[N, K, d]`` and the final coupling coefficients ``c`` ``[N, K, m]``.

        ``c`` is the softmax over capsules of the routing logits used for the final
        ``v``: each valid column sums to 1 over ``K``, padded columns are 0.
        """
        n, m, d = h.shape
        k = self.n_interests
        z = (h @ self.capsule_weight).view(n, m, k, d).transpose(1, 2)  # [N, K, m, d]
        valid = mask.unsqueeze(1).to(h.dtype)  # [N, 1, m]
        logits = h.new_zeros(n, k, m)
        out = h.new_zeros(n, k, d)
        z_route = z.detach()  # what the logit updates see (gradient stopped)
        for it in range(self.routing_iters):
            last = it == self.routing_iters - 1
            coupling = torch.softmax(logits, dim=1) * valid
            out = squash(torch.einsum("nkm,nkmd->nkd", coupling, z if last else z_route),
                         self.eps)
            if last:
                break
            logits = logits + torch.einsum("nkmd,nkd->nkm", z_route, out)
            if it == 0 and self.bilstm is not None:
                lengths = mask.sum(1).repeat_interleave(k)
                if self.bilstm_mode == "interests":
                    z = z + self.bilstm(z.reshape(n * k, m, d), lengths).view(n, k, m, d)
                    z_route = z.detach()
                else:  # "routing": the BiLSTM steers the routing only; v uses the original Z
                    base = z.detach()
                    steer = self.bilstm(base.reshape(n * k, m, d), lengths)
                    z_route = base + steer.view(n, k, m, d)
        return self.activation(torch.einsum("nkd,kde->nke", out, self.interest_weight)), coupling

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.dim}, n_interests={self.n_interests}, "
            f"routing_iters={self.routing_iters}, bilstm={self.bilstm is not None})"
        )
