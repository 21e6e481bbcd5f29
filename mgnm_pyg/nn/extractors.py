"""Replacements of the interest extractor for the Table 3 ablations ("SCN -> X").

Each extractor maps level features ``H [N, m, d]`` with a mask ``[N, m]`` to ``K``
interests ``[N, K, d]``, like :class:`~mgnm_pyg.nn.capsule.SequentialCapsuleNetwork`.
The paper does not describe them; the choices are written on each class.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .bilstm import MaskedBiLSTM
from .capsule import (
    SequentialCapsuleNetwork,
    interest_activation_fn,
    reset_capsule_weight,
)

__all__ = [
    "EXTRACTORS",
    "BiLSTMExtractor",
    "SelfAttentionExtractor",
    "SumPoolingExtractor",
    "TransformerExtractor",
    "build_extractor",
]


class _PooledInterests(nn.Module):
    """Maps one pooled vector per row to K interests ``q_k = ReLU(s W'_k)``, like Eq. 11
    (``interest_activation="none"`` drops the ReLU, as for the SCN)."""

    def __init__(self, dim: int, n_interests: int, interest_activation: str = "relu") -> None:
        super().__init__()
        self.dim = dim
        self.interest_weight = nn.Parameter(torch.empty(n_interests, dim, dim))
        self.activation = interest_activation_fn(interest_activation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_capsule_weight(self.interest_weight, self.dim)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.activation(torch.einsum("nd,kde->nke", pooled, self.interest_weight))


class SumPoolingExtractor(nn.Module):
    r"""Sum pooling: ``s = \sum_j h_j`` over valid steps, then ``q_k = ReLU(s W'_k)``."""

    def __init__(self, dim: int, n_interests: int = 4, interest_activation: str = "relu"
                 ) -> None:
        super().__init__()
        self.heads = _PooledInterests(dim, n_interests, interest_activation)

    def reset_parameters(self) -> None:
        self.heads.reset_parameters()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        return self.heads((h * mask.unsqueeze(-1).to(h.dtype)).sum(1))


class BiLSTMExtractor(nn.Module):
    r"""BiLSTM: masked mean of the BiLSTM outputs, then ``q_k = ReLU(s W'_k)``."""

    def __init__(self, dim: int, n_interests: int = 4, interest_activation: str = "relu"
                 ) -> None:
        super().__init__()
        self.bilstm = MaskedBiLSTM(dim)
        self.heads = _PooledInterests(dim, n_interests, interest_activation)

    def reset_parameters(self) -> None:
        self.bilstm.reset_parameters()
        self.heads.reset_parameters()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        lengths = mask.sum(1)
        out = self.bilstm(h, lengths)  # zero at padded steps
        return self.heads(out.sum(1) / lengths.unsqueeze(-1).to(h.dtype))


class SelfAttentionExtractor(nn.Module):
    r"""Multi-head self-attentive pooling (as in ComiRec-SA), one head per interest.

    .. math::
        A = \mathrm{softmax}_j\big(W_2 \tanh(W_1 h_j)\big) \in \mathbb{R}^{K \times m},
        \qquad q_k = \sum_j A_{kj} h_j

    with padded ``j`` masked out; the hidden size of ``W_1`` is ``4d``.
    """

    def __init__(self, dim: int, n_interests: int = 4) -> None:
        super().__init__()
        self.hidden = nn.Linear(dim, 4 * dim)
        self.heads = nn.Linear(4 * dim, n_interests, bias=False)

    def reset_parameters(self) -> None:
        self.hidden.reset_parameters()
        self.heads.reset_parameters()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        scores = self.heads(torch.tanh(self.hidden(h))).transpose(1, 2)  # [N, K, m]
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return torch.softmax(scores, dim=-1) @ h


class TransformerExtractor(nn.Module):
    r"""One Transformer encoder layer (no dropout, no positional encoding; 2 heads when
    ``d`` is even), followed by the self-attentive pooling of
    :class:`SelfAttentionExtractor`."""

    def __init__(self, dim: int, n_interests: int = 4) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(
            dim, nhead=2 if dim % 2 == 0 else 1, dim_feedforward=4 * dim, dropout=0.0,
            batch_first=True,
        )
        self.pool = SelfAttentionExtractor(dim, n_interests)

    def reset_parameters(self) -> None:
        self.encoder.self_attn._reset_parameters()
        for layer in (self.encoder.linear1, self.encoder.linear2, self.encoder.norm1,
                      self.encoder.norm2):
            layer.reset_parameters()
        self.pool.reset_parameters()

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        # The encoder's fast path (eval mode) would zero padded steps; the pooling
        # masks them anyway, so train and eval give the same interests.
        out = self.encoder(h, src_key_padding_mask=~mask)
        return self.pool(out, mask)


#: name -> class of every interest extractor ("capsule" is MGNM's own SCN).
EXTRACTORS: dict[str, type[nn.Module]] = {
    "capsule": SequentialCapsuleNetwork,
    "bilstm": BiLSTMExtractor,
    "sum": SumPoolingExtractor,
    "self_attention": SelfAttentionExtractor,
    "transformer": TransformerExtractor,
}


#: The SCN's settings that other extractors do not have, with their defaults.
CAPSULE_ONLY = {"capsule_maps": "shared", "routing_init": "zero",
                "bilstm_layout": "per-capsule", "capsule_output": "squash"}


def build_extractor(
    name: str, dim: int, n_interests: int, routing_iters: int = 3, use_bilstm: bool = True,
    interest_activation: str = "relu", bilstm_mode: str = "interests", max_len: int = 100,
    **capsule: str,
) -> nn.Module:
    """Interest extractor by name (``routing_iters``/``use_bilstm``/``bilstm_mode``,
    ``max_len`` and the :data:`CAPSULE_ONLY` settings apply to the SCN only, and another
    extractor refuses a non-default one;
    ``interest_activation`` to the extractors that end in ``W'_k`` heads: capsule, sum,
    bilstm; the attentive poolings have none)."""
    if name not in EXTRACTORS:
        raise ValueError(f"unknown extractor {name!r}; expected one of {sorted(EXTRACTORS)}")
    if name == "capsule":
        return SequentialCapsuleNetwork(dim, n_interests, routing_iters, use_bilstm,
                                        interest_activation, bilstm_mode, max_len=max_len,
                                        **capsule)
    for key, value in capsule.items():
        if key not in CAPSULE_ONLY:
            raise TypeError(f"build_extractor() got an unexpected argument {key!r}")
        if value != CAPSULE_ONLY[key]:
            raise ValueError(f"{key}={value!r} needs the capsule extractor, not {name!r}")
    interest_activation_fn(interest_activation)  # rejects an unknown name for every extractor
    if name in ("sum", "bilstm"):  # the extractors that end in W'_k heads
        return EXTRACTORS[name](dim, n_interests, interest_activation)
    return EXTRACTORS[name](dim, n_interests)
