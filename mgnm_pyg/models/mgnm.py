r"""MGNM: the multi-grained neural model for sequential recommendation.

Reference:
    Yu Tian, Jianxin Chang, Yanan Niu, Yang Song, Chenliang Li. "When Multi-Level Meets
    Multi-Interest: A Multi-Grained Neural Model for Sequential Recommendation".
    SIGIR 2022, pp. 1632-1641 (arXiv 2205.01286).

A user's history becomes a fully connected graph with user-aware edge weights (Eq. 1);
``L`` normalised graph convolutions give levels ``0..L`` (Eq. 2-4); a sequential capsule
network extracts ``K`` interests per level (Eq. 5-11); target attention scores a
candidate per level (Eq. 12-14), and the levels are max-pooled (Eq. 15).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..nn.adjacency import user_aware_adjacency
from ..nn.conv import DenseUserAwareGraphConv, UserAwareGraphConv
from ..nn.extractors import build_extractor
from ..nn.graph_levels import dense_levels, edge_list_levels
from ..nn.level_norm import LEVEL_NORMS, normalize_levels
from ..nn.readout import target_attention
from .base import SequentialRecommender, reset_item_embedding
from .mgnm_loss import MGNMObjective

__all__ = ["ADJACENCY_NORMALIZATIONS", "LEVEL_INPUTS", "MGNM", "GraphLevels", "MGNMEncoding"]

ADJACENCY_NORMALIZATIONS = ("symmetric", "none")
LEVEL_INPUTS = ("previous", "input")
#: What MGNM's loss reads: every level's score (Eq. 16), or the pooled score that ranks.
LEVEL_LOSSES = ("per-level", "pooled")

#: Standard deviation of the user embeddings at initialisation (the authors' code).
USER_INIT_STD = 0.1


class GraphLevels(NamedTuple):
    """Output of :meth:`MGNM.levels`: what the interest extractor reads."""

    levels: list[Tensor]  #: ``L+1`` tensors ``[B, m, d]``, level 0 first, zeros at padding
    adjacency: Tensor  #: ``[B, m, m]`` user-aware adjacency (Eq. 1), zeros at padding
    mask: Tensor  #: ``bool [B, m]`` valid history positions


class MGNMEncoding(NamedTuple):
    """Output of :meth:`MGNM.encode`."""

    interests: Tensor  #: ``[B, L+1, K, d]`` interests per level
    adjacency: Tensor  #: ``[B, m, m]`` user-aware adjacency (Eq. 1), zeros at padding
    mask: Tensor  #: ``bool [B, m]`` valid history positions


class MGNM(MGNMObjective, SequentialRecommender):
    r"""Multi-grained neural model (MGNM).

    Args:
        n_users: number of users (ids ``0..n_users-1``).
        n_items: number of items (ids ``1..n_items``; 0 is padding).
        dim: embedding size ``d`` (16 for Amazon in the paper).
        n_interests: number of interests ``K``.
        n_layers: number of graph layers ``L`` (levels ``0..L``).
        routing_iters: capsule routing iterations ``tau``.
        theta1: weight of the L1 term on the adjacency (Eq. 17).
        theta2: weight of the L2 term on the parameters (Eq. 17).
        conv: ``"dense"`` (padded batch matmuls) or ``"mp"`` (PyG MessagePassing on
            per-sequence graphs); both compute the same function.
        use_graph: False is the "w/o UGCN" ablation: only level 0.
        use_bilstm: False is the "w/o BiLSTM" ablation.
        level_pooling: ``"max"`` (Eq. 15) or ``"sum"`` (the "w/o MaxPool" ablation).
            Inference only: the loss (Eq. 16) sums the per-level losses, so training
            does not depend on it; the best checkpoint validation picks may.
        extractor: ``"capsule"`` (the SCN) or a Table 3 replacement (``"bilstm"``,
            ``"sum"``, ``"self_attention"``, ``"transformer"``).
        share_layer_weight: one ``W`` for all graph layers (SPEC) or one per layer.
        share_capsule_weights: one interest extractor for all levels (SPEC) or one per
            level (then levels are extracted one call each).
        interest_activation: ``"relu"`` is Eq. 11, ``q_k = ReLU(o_k W'_k)``; ``"none"``
            drops the ReLU; ``"identity"`` is ``q_k = o_k`` without ``W'_k``, as the
            authors' code (its ``relu_layer=False``).
        bilstm_mode: ``"interests"`` (SPEC's reading of Eq. 10) or ``"routing"`` (the
            authors' code); see :class:`~mgnm_pyg.nn.capsule.SequentialCapsuleNetwork`.
        score_scale: departs from the paper: every level score ``y(l)`` is multiplied by
            this factor (1 is the paper). Squashed capsules have norm below 1 and the
            item embeddings start small, so unscaled logits start near 0.
        learn_score_scale: departs from the paper: the factor is a parameter, starting at
            ``score_scale`` (it then enters the L2 term like every parameter).
        item_init_scale: departs from the paper when not 1: the Glorot-uniform item
            table is multiplied by this factor at initialisation.
        level_norm: departs from the paper when not ``"none"``: the graph levels
            ``1..L`` are normalised before the interest extractor
            (:func:`~mgnm_pyg.nn.level_norm.normalize_levels`).
        capsule_output: departs from the paper when ``"mean"``: the final capsule output
            is the coupling-weighted mean of ``Z``, not squashed (Eq. 8), see
            :class:`~mgnm_pyg.nn.capsule.SequentialCapsuleNetwork`.
        adjacency_scale: departs from the paper when not 1: Eq. 1's logits are multiplied
            by this factor, ``A_ij = sigmoid(s * sum_k x_i[k] x_j[k] x_u[k])``. The
            trilinear logits of small embeddings stay near 0, so ``A`` stays near 0.5.

    The authors' code (SPEC, "The authors' code, as it computes"); each default is the
    paper's, and ``presets/authors.toml`` sets them all:
        max_len: the number of per-position capsule maps.
        capsule_maps: ``"auto"``/``"shared"`` (SPEC) or ``"per-position"`` (authors'),
            see :class:`~mgnm_pyg.nn.capsule.SequentialCapsuleNetwork`.
        routing_init: ``"zero"`` (SPEC) or ``"random"`` (authors': truncated normal).
        bilstm_layout: ``"per-capsule"`` (SPEC) or ``"joint"`` (authors': one ``K*d``-wide
            sequence, :mod:`mgnm_pyg.nn.authors_bilstm`).
        adjacency_user: the ``x_u`` of Eq. 1; False is ``sigmoid(x_i . x_j)`` (authors').
        adjacency_normalization: ``"symmetric"`` propagates with
            ``P = I + D^-1/2 A D^-1/2`` (Eq. 3); ``"none"`` with the raw ``A`` (authors').
        level_input: ``"previous"`` stacks the layers, ``H(l+1) = f(H(l))`` (Eq. 2);
            ``"input"`` computes every level from level 0, ``H(l+1) = f(X)`` (authors'; with
            one shared ``W`` all levels above 0 are then equal, as in their code).
        graph_bias: add a bias ``b`` inside the LeakyReLU of each layer (authors').
        l2_halved: the L2 term is ``theta2 * sum p^2 / 2`` (TF's ``l2_loss``, authors')
            instead of Eq. 17's ``theta2 * sum p^2``.

    Choices the paper leaves open:
        - Initialisation as in the authors' code: item embeddings, ``W_k`` and ``W'_k``
          Glorot-uniform (the TF1 default), user embeddings ``N(0, 0.1^2)``, graph weight
          ``W`` ``N(0, 0.01^2)`` (see :func:`~mgnm_pyg.nn.conv.reset_graph_weight`); the
          padding row of the item table is zero.
        - LeakyReLU slope 0.2 (``tf.nn.leaky_relu`` in the authors' code).
        - BiLSTM: hidden size ``d`` per direction, ``[fwd || bwd]`` mapped back to ``d``
          by a linear layer.
        - The L2 term covers every parameter of the model (the paper's Theta), tables
          included.
        - Under ``use_graph=False`` the adjacency is all zeros and the L1 term is 0.

    Shapes:
        - users: ``[B]``; histories: ``[B, m]`` (left-aligned, 0-padded);
          items: ``[B, C]`` or ``[C]``; labels: ``[B, C]``
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 16,
        n_interests: int = 4,
        n_layers: int = 3,
        routing_iters: int = 3,
        theta1: float = 1e-6,
        theta2: float = 1e-5,
        conv: str = "dense",
        use_graph: bool = True,
        use_bilstm: bool = True,
        level_pooling: str = "max",
        extractor: str = "capsule",
        share_layer_weight: bool = True,
        share_capsule_weights: bool = True,
        interest_activation: str = "relu",
        bilstm_mode: str = "interests",
        score_scale: float = 1.0,
        learn_score_scale: bool = False,
        item_init_scale: float = 1.0,
        level_norm: str = "none",
        adjacency_scale: float = 1.0,
        max_len: int = 100,
        capsule_maps: str = "auto",
        routing_init: str = "zero",
        bilstm_layout: str = "per-capsule",
        capsule_output: str = "squash",
        adjacency_user: bool = True,
        adjacency_normalization: str = "symmetric",
        level_input: str = "previous",
        graph_bias: bool = False,
        l2_halved: bool = False,
        level_loss: str = "per-level",
    ) -> None:
        super().__init__()
        if conv not in ("dense", "mp"):
            raise ValueError(f"conv must be 'dense' or 'mp', got {conv!r}")
        if adjacency_normalization not in ADJACENCY_NORMALIZATIONS:
            raise ValueError(f"adjacency_normalization must be one of "
                             f"{ADJACENCY_NORMALIZATIONS}, got {adjacency_normalization!r}")
        if level_input not in LEVEL_INPUTS:
            raise ValueError(f"level_input must be one of {LEVEL_INPUTS}, got {level_input!r}")
        capsule_maps = "shared" if capsule_maps == "auto" else capsule_maps
        if level_pooling not in ("max", "sum"):
            raise ValueError(f"level_pooling must be 'max' or 'sum', got {level_pooling!r}")
        if level_loss not in LEVEL_LOSSES:
            raise ValueError(f"level_loss must be one of {LEVEL_LOSSES}, got {level_loss!r}")
        if level_norm not in LEVEL_NORMS:
            raise ValueError(f"level_norm must be one of {LEVEL_NORMS}, got {level_norm!r}")
        self.config = dict(
            n_users=n_users, n_items=n_items, dim=dim, n_interests=n_interests,
            n_layers=n_layers, routing_iters=routing_iters, theta1=theta1, theta2=theta2,
            conv=conv, use_graph=use_graph, use_bilstm=use_bilstm,
            level_pooling=level_pooling, extractor=extractor,
            share_layer_weight=share_layer_weight, share_capsule_weights=share_capsule_weights,
            interest_activation=interest_activation, bilstm_mode=bilstm_mode,
            score_scale=score_scale, learn_score_scale=learn_score_scale,
            item_init_scale=item_init_scale, level_norm=level_norm,
            adjacency_scale=adjacency_scale, max_len=max_len,
            capsule_maps=capsule_maps, routing_init=routing_init, bilstm_layout=bilstm_layout,
            capsule_output=capsule_output, adjacency_user=adjacency_user,
            adjacency_normalization=adjacency_normalization,
            level_input=level_input, graph_bias=graph_bias, l2_halved=l2_halved,
            level_loss=level_loss,
        )
        # Hyperparameters, read in one place.
        self.dim, self.n_interests = dim, n_interests
        self.n_layers = n_layers if use_graph else 0
        self.n_levels = self.n_layers + 1
        self.theta1, self.theta2 = theta1, theta2
        self.conv, self.use_graph, self.level_pooling = conv, use_graph, level_pooling
        self.level_norm, self.item_init_scale = level_norm, item_init_scale
        self.adjacency_user, self.level_input = adjacency_user, level_input
        self.adjacency_scale = adjacency_scale
        self.normalized = adjacency_normalization == "symmetric"
        self.graph_bias, self.l2_halved, self.level_loss = graph_bias, l2_halved, level_loss
        self.initial_score_scale = score_scale
        if learn_score_scale:
            self.score_scale = nn.Parameter(torch.tensor(float(score_scale)))
        else:
            self.register_buffer("score_scale", torch.tensor(float(score_scale)),
                                 persistent=False)

        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        n_convs = 0 if not use_graph else (1 if share_layer_weight else n_layers)
        if conv == "dense":  # the caller builds P, normalised or not
            self.convs = nn.ModuleList(DenseUserAwareGraphConv(dim, bias=graph_bias)
                                       for _ in range(n_convs))
        else:
            self.convs = nn.ModuleList(
                UserAwareGraphConv(dim, bias=graph_bias, identity=self.normalized)
                for _ in range(n_convs))
        n_extractors = 1 if share_capsule_weights else self.n_levels
        # build_extractor rejects an unknown extractor name.
        self.extractors = nn.ModuleList(
            build_extractor(extractor, dim, n_interests, routing_iters, use_bilstm,
                            interest_activation, bilstm_mode, capsule_maps=capsule_maps,
                            max_len=max_len, routing_init=routing_init,
                            bilstm_layout=bilstm_layout, capsule_output=capsule_output)
            for _ in range(n_extractors)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, 0.0, USER_INIT_STD)
        reset_item_embedding(self.item_embedding, self.item_init_scale)
        with torch.no_grad():
            self.score_scale.fill_(self.initial_score_scale)
        for module in [*self.convs, *self.extractors]:
            module.reset_parameters()

    def levels(self, users: Tensor, histories: Tensor) -> GraphLevels:
        """The graph levels ``H(0..L)`` (Eq. 1-4, then ``level_norm``) and the adjacency."""
        mask = histories != 0
        x = self.item_embedding(histories)
        b, m, _ = x.shape
        if not self.use_graph:
            return GraphLevels(normalize_levels([x], mask, self.level_norm),
                               x.new_zeros(b, m, m), mask)
        # Without the user term, Eq. 1 is sigmoid(x_i . x_j): x_u = 1 (exactly). The
        # logits are linear in x_u, so the adjacency scale multiplies x_u (both conv forms).
        x_user = self.user_embedding(users) if self.adjacency_user else x.new_ones(b, x.size(2))
        if self.adjacency_scale != 1.0:
            x_user = x_user * self.adjacency_scale
        convs = [self.convs[0] if len(self.convs) == 1 else self.convs[layer]
                 for layer in range(self.n_layers)]
        stacked = self.level_input == "previous"
        if self.conv == "dense":
            adj = user_aware_adjacency(x, x_user, mask)
            levels = dense_levels(convs, x, mask, adj, self.normalized, stacked,
                                  mask_padding=self.graph_bias)
        else:
            levels, adj = edge_list_levels(convs, x, x_user, mask, self.normalized, stacked)
        return GraphLevels(normalize_levels(levels, mask, self.level_norm), adj, mask)

    def _extract(self, levels: list[Tensor], mask: Tensor, method: str) -> Any:
        """Each extractor's ``method`` (``forward`` or ``route``) on its levels, stacked
        ``[B, L+1, ...]``; a tuple output is stacked field by field."""
        b, m, d = levels[0].shape
        if len(self.extractors) == 1:
            # All levels of all users go through one extractor call: N = B * (L+1).
            h = torch.stack(levels, 1).reshape(b * self.n_levels, m, d)
            level_mask = mask.unsqueeze(1).expand(b, self.n_levels, m).reshape(-1, m)
            out = getattr(self.extractors[0], method)(h, level_mask)
            unstack = lambda t: t.view(b, self.n_levels, *t.shape[1:])  # noqa: E731
            return tuple(map(unstack, out)) if isinstance(out, tuple) else unstack(out)
        outs = [getattr(e, method)(h, mask) for e, h in zip(self.extractors, levels, strict=True)]
        if isinstance(outs[0], tuple):
            return tuple(torch.stack(field, 1) for field in zip(*outs, strict=True))
        return torch.stack(outs, 1)

    @property
    def routes(self) -> bool:
        """Whether the interest extractor is the capsule routing (so :meth:`route` works)."""
        return all(hasattr(e, "route") for e in self.extractors)

    def route(self, graph: GraphLevels) -> tuple[Tensor, Tensor]:
        """Interests ``[B, L+1, K, d]`` and final coupling coefficients ``[B, L+1, K, m]``
        of the capsule routing on each level (``ValueError`` for another extractor)."""
        if not self.routes:
            raise ValueError(f"the {self.config['extractor']!r} extractor does not route")
        return self._extract(graph.levels, graph.mask, "route")

    def encode(self, users: Tensor, histories: Tensor) -> MGNMEncoding:
        """Interests of every level; each sequence is encoded once, whatever the candidates."""
        graph = self.levels(users, histories)
        interests = self._extract(graph.levels, graph.mask, "forward")
        return MGNMEncoding(interests, graph.adjacency, graph.mask)

    def score(self, interests: Tensor, items: Tensor) -> Tensor:
        """Level scores ``y(l)`` (logits) ``[B, L+1, C]`` for items ``[B, C]`` or ``[C]``,
        times ``score_scale``."""
        return target_attention(interests, self.item_embedding(items)) * self.score_scale

    def train_scores(self, encoding: MGNMEncoding, items: Tensor, targets: Tensor | None
                     ) -> Tensor:
        """Scores the losses see: every level's ``[B, L+1, C]`` (Eq. 16), or under
        ``level_loss="pooled"`` the pooled score ``[B, 1, C]`` that ranks at inference."""
        levels = self.score(encoding.interests, items)
        return self.pool_levels(levels).unsqueeze(1) if self.level_loss == "pooled" else levels

    def pool_levels(self, level_scores: Tensor) -> Tensor:
        """``[B, L+1, C] -> [B, C]``: max over levels (Eq. 15), or sum (w/o MaxPool)."""
        if self.level_pooling == "sum":
            return level_scores.sum(1)
        # amax: the same values as max(1).values, without computing the argmax
        return level_scores.amax(1)
