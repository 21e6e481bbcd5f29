"""Sequential capsule network (SCN) of MGNM: routing, the BiLSTM of Eq. 10, interests (Eq. 11).

The BiLSTM itself (padding-safe and packed on the CPU) is in :mod:`mgnm_pyg.nn.bilstm`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .authors_bilstm import JointBiLSTM
from .bilstm import MaskedBiLSTM

__all__ = [
    "BILSTM_LAYOUTS",
    "BILSTM_MODES",
    "CAPSULE_MAPS",
    "CAPSULE_OUTPUTS",
    "INTEREST_ACTIVATIONS",
    "ROUTING_INITS",
    "SequentialCapsuleNetwork",
    "per_position_inputs",
    "reset_capsule_weight",
    "routing_logits",
    "seeded_draws",
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


#: ``identity`` (``q_k = o_k``, no ``W'_k``) exists for the capsule network only.
INTEREST_ACTIVATIONS = ("relu", "none", "identity")
BILSTM_MODES = ("interests", "routing")
BILSTM_LAYOUTS = ("per-capsule", "joint")
#: The final capsule output: Eq. 8's squash, or the coupling-weighted mean of Z.
CAPSULE_OUTPUTS = ("squash", "mean")
CAPSULE_MAPS = ("shared", "per-position")
ROUTING_INITS = ("zero", "random")


def interest_activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The map applied to ``o_k W'_k`` in Eq. 11: ``"relu"`` (the paper) or ``"none"``."""
    if name == "relu":
        return F.relu
    if name == "none":
        return nn.Identity()
    if name == "identity":
        raise ValueError("interest_activation 'identity' (q_k = o_k) exists for the capsule "
                         "extractor only")
    raise ValueError(f"interest_activation must be one of {INTEREST_ACTIVATIONS}, got {name!r}")


def _check(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def routing_logits(n: int, k: int, m: int, like: Tensor, init: str) -> Tensor:
    """Initial routing logits ``[n, k, m]``: zeros (SPEC), or ``"random"`` as the authors'
    code: a truncated normal (std 1, cut at 2 std as TF's ``truncated_normal``) drawn from
    torch's default generator at every call, so a seeded run is deterministic on the CPU.
    Evaluation, recommendation, the ranking agreement and the pictures score under
    :func:`seeded_draws` with the run's seed, so the same command on the same model gives
    the same answer; as in the authors' code, a sequence's draws depend on the batch it is
    scored in (a user's top-K from ``recommend --user`` and ``--all-users`` can differ)."""
    if init == "zero":
        return like.new_zeros(n, k, m)
    return nn.init.trunc_normal_(like.new_empty(n, k, m), 0.0, 1.0, -2.0, 2.0)


@contextlib.contextmanager
def seeded_draws(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the enclosed scoring with torch's generators seeded by ``seed`` and restore the
    caller's afterwards: a model that draws in its forward pass (``routing_init="random"``)
    then draws the same numbers each time; a model that draws nothing is unaffected."""
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def per_position_inputs(h: Tensor, mask: Tensor, weight: Tensor) -> Tensor:
    r"""``Z`` with one map per position: ``z_j = W_{p(j)} h_j`` (ComiRec-DR, the authors').

    Positions count back from the most recent item: in a history of ``n`` items,
    left-aligned step ``j`` uses ``weight[T - n + j]`` (``T = weight.size(0)``), the map
    the authors' right-aligned window gives it; the most recent item uses ``weight[T-1]``.

    Shapes:
        - h: ``[N, m, d]`` (zero at padding); mask: ``bool [N, m]``;
          weight: ``[T, K*d, d]`` with ``T >= m``; output: ``[N, m, K*d]``
    """
    m = h.size(1)
    if m > weight.size(0):
        raise ValueError(f"a history of {m} steps is longer than the {weight.size(0)} "
                         "per-position capsule maps (max_len)")
    steps = torch.arange(m, device=h.device).unsqueeze(0)
    shift = (m - mask.sum(1)).unsqueeze(1)  # right-align within the batch's m steps
    right = torch.gather(h, 1, ((steps - shift) % m).unsqueeze(-1).expand_as(h))
    z = torch.einsum("nad,aed->nae", right, weight[weight.size(0) - m:])
    return torch.gather(z, 1, ((steps + shift) % m).unsqueeze(-1).expand_as(z))


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
    ``q_k = o_k W'_k`` with ``"none"``, or ``q_k = o_k`` (no ``W'_k``) with ``"identity"``.

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
        capsule_maps: ``"shared"`` (SPEC: ``Z_k = H W_k``, one ``W_k`` for all positions)
            or ``"per-position"`` (the authors' code and ComiRec-DR's: a ``[max_len, K*d,
            d]`` tensor drawn ``N(0, 1)``, see :func:`per_position_inputs`).
        max_len: number of per-position maps (the longest history).
        routing_init: ``"zero"`` (SPEC) or ``"random"`` (the authors': see
            :func:`routing_logits`; drawn once per sequence and level, where their code,
            which re-encodes the history for each candidate, draws once per candidate).
        bilstm_layout: ``"per-capsule"`` (SPEC: one sequence per capsule,
            :class:`~mgnm_pyg.nn.bilstm.MaskedBiLSTM`) or ``"joint"`` (the authors': one
            ``K*d``-wide sequence per history, :class:`~mgnm_pyg.nn.authors_bilstm.JointBiLSTM`).
        capsule_output: ``"squash"`` (Eq. 8: ``o_k = squash(v_k)``, norm below 1) or
            ``"mean"`` (departs from the paper: the final ``o_k`` is the coupling-weighted
            mean ``v_k / sum_j c_kj``, not squashed, so an interest has the scale of its
            items, as an attentive pooling's; the iterations before it still squash).
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
        capsule_maps: str = "shared",
        max_len: int = 100,
        routing_init: str = "zero",
        bilstm_layout: str = "per-capsule",
        capsule_output: str = "squash",
    ) -> None:
        super().__init__()
        self.bilstm_mode = _check("bilstm_mode", bilstm_mode, BILSTM_MODES)
        self.capsule_output = _check("capsule_output", capsule_output, CAPSULE_OUTPUTS)
        self.capsule_maps = _check("capsule_maps", capsule_maps, CAPSULE_MAPS)
        self.routing_init = _check("routing_init", routing_init, ROUTING_INITS)
        self.bilstm_layout = _check("bilstm_layout", bilstm_layout, BILSTM_LAYOUTS)
        identity = _check("interest_activation", interest_activation,
                          INTEREST_ACTIVATIONS) == "identity"
        self.activation = nn.Identity() if identity else interest_activation_fn(
            interest_activation)
        self.dim = dim
        self.n_interests = n_interests
        self.routing_iters = routing_iters
        self.eps = eps
        if capsule_maps == "shared":
            # The K capsule maps W_k are one [d, K*d] matrix, so Z is a single matmul.
            self.capsule_weight = nn.Parameter(torch.empty(dim, n_interests * dim))
        else:
            self.capsule_weight = nn.Parameter(torch.empty(max_len, n_interests * dim, dim))
        if identity:
            self.register_parameter("interest_weight", None)
        else:
            self.interest_weight = nn.Parameter(torch.empty(n_interests, dim, dim))
        if not use_bilstm:
            self.bilstm = None
        elif bilstm_layout == "joint":
            self.bilstm = JointBiLSTM(dim, n_interests)
        else:
            self.bilstm = MaskedBiLSTM(dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform per-capsule ``W_k`` (or ``N(0, 1)`` per-position maps, as the
        authors' code) and ``W'_k`` (each d x d); BiLSTM defaults."""
        if self.capsule_maps == "shared":
            reset_capsule_weight(self.capsule_weight, self.dim)
        else:
            nn.init.normal_(self.capsule_weight, 0.0, 1.0)
        if self.interest_weight is not None:
            reset_capsule_weight(self.interest_weight, self.dim)
        if self.bilstm is not None:
            self.bilstm.reset_parameters()

    def _inputs(self, h: Tensor, mask: Tensor) -> Tensor:
        """``Z`` ``[N, K, m, d]``."""
        n, m, d = h.shape
        if self.capsule_maps == "shared":
            z = h @ self.capsule_weight
        else:
            z = per_position_inputs(h, mask, self.capsule_weight)
        return z.view(n, m, self.n_interests, d).transpose(1, 2)

    def _bilstm(self, z: Tensor, mask: Tensor) -> Tensor:
        """``BiLSTM(Z)`` ``[N, K, m, d]`` in the chosen layout, zero at padding."""
        n, k, m, d = z.shape
        if self.bilstm_layout == "joint":
            return self.bilstm(z, mask.sum(1))
        lengths = mask.sum(1).repeat_interleave(k)
        return self.bilstm(z.reshape(n * k, m, d), lengths).view(n, k, m, d)

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.route(h, mask)[0]

    def route(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Interests ``[N, K, d]`` and the final coupling coefficients ``c`` ``[N, K, m]``.

        ``c`` is the softmax over capsules of the routing logits used for the final
        ``v``: each valid column sums to 1 over ``K``, padded columns are 0.
        """
        n, m, d = h.shape
        k = self.n_interests
        z = self._inputs(h, mask)  # [N, K, m, d]
        valid = mask.unsqueeze(1).to(h.dtype)  # [N, 1, m]
        logits = routing_logits(n, k, m, h, self.routing_init)
        out = h.new_zeros(n, k, d)
        z_route = z.detach()  # what the logit updates see (gradient stopped)
        for it in range(self.routing_iters):
            last = it == self.routing_iters - 1
            coupling = torch.softmax(logits, dim=1) * valid
            # Products summed over m (and over d below) rather than einsum: einsum makes
            # them N*K batched matrix products of one row each, several times slower on
            # the CPU, forward and backward.
            v = (coupling.unsqueeze(-1) * (z if last else z_route)).sum(2)
            if last and self.capsule_output == "mean":
                # every capsule gets a positive share of every valid item, so the sum is > 0
                out = v / coupling.sum(2, keepdim=True)
            else:
                out = squash(v, self.eps)
            if last:
                break
            logits = logits + (z_route * out.unsqueeze(2)).sum(-1)
            if it == 0 and self.bilstm is not None:
                if self.bilstm_mode == "interests":
                    z = z + self._bilstm(z, mask)
                    z_route = z.detach()
                else:  # "routing": the BiLSTM steers the routing only; v uses the original Z
                    base = z.detach()
                    z_route = base + self._bilstm(base, mask)
        if self.interest_weight is None:  # "identity": q_k = o_k
            return out, coupling
        return self.activation(torch.einsum("nkd,kde->nke", out, self.interest_weight)), coupling

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.dim}, n_interests={self.n_interests}, "
            f"routing_iters={self.routing_iters}, bilstm={self.bilstm is not None}, "
            f"capsule_maps={self.capsule_maps!r})"
        )
