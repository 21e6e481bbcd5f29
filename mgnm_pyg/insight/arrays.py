r"""What a trained MGNM learned, as plain arrays (for ``mgnm-pyg visualize`` and notebooks).

Every function here returns NumPy arrays or small dataclasses and draws nothing; the
pictures are drawn from them by :mod:`mgnm_pyg.insight.figures`.

* :func:`latest_history`: a raw user id -> the user's latest history (the last
  ``max_len`` items, as :func:`~mgnm_pyg.inference.recommend.recommend` uses it).
* :func:`level_features`: the adjacency ``A`` (Eq. 1), the propagation matrix
  ``P = I + D^{-1/2} A D^{-1/2}`` (Eq. 3) and the level features ``H^{(0..L)}``, computed
  as :meth:`MGNM.encode <mgnm_pyg.models.MGNM.encode>` computes them.
* :func:`routing`: the interests and the final capsule coupling coefficients
  ``c_{kj}`` of every level (how the routing assigns item ``j`` to interest ``k``).
* :func:`routing_entropy`, :func:`project_2d`, :func:`strongest_edges`: summaries.
* :func:`run_summary`, :func:`pooling_comparison`: a run's settings and test metrics,
  and its metric under max- and sum-pooling of the levels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mgnm_pyg.data.dataset import find_user
from mgnm_pyg.errors import MGNMError, RecommendError
from mgnm_pyg.nn.adjacency import normalize_adjacency

__all__ = [
    "LevelFeatures",
    "Routing",
    "UserHistory",
    "latest_history",
    "level_features",
    "pooling_comparison",
    "project_2d",
    "require_mgnm",
    "routing",
    "routing_entropy",
    "run_summary",
    "strongest_edges",
    "user_index",
]


@dataclass
class UserHistory:
    """One user's latest history: internal ids (oldest first) and their raw ids."""

    user: str  #: raw user id
    index: int  #: internal user id
    items: np.ndarray  #: ``int64 [m]`` item ids, oldest first (the last ``max_len``)
    item_ids: list[str]  #: raw item ids of ``items``
    n_total: int  #: length of the user's whole sequence (``>= m``)

    def batch(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """``users [1]`` and ``histories [1, m]`` for the model."""
        users = torch.tensor([self.index], device=device)
        return users, torch.as_tensor(self.items, device=device).unsqueeze(0)


def user_index(dataset: Any, user: str) -> int:
    """Internal id of raw user id ``user``; an unknown user is a :class:`RecommendError`."""
    index = find_user(dataset, user)
    if index is not None:
        return index
    raise RecommendError(f"unknown user {user!r} (not in dataset {dataset.name!r})")


def latest_history(dataset: Any, user: str, max_len: int) -> UserHistory:
    """The last ``max_len`` items of ``user``'s sequence, as ``recommend`` builds them."""
    index = user_index(dataset, user)
    sequence = dataset.sequence(index)
    if len(sequence) == 0:
        raise RecommendError(f"user {user!r} has an empty history: nothing to show")
    items = np.asarray(sequence[-max_len:], dtype=np.int64)
    return UserHistory(user, index, items, [str(dataset.item_ids[i]) for i in items],
                       len(sequence))


@dataclass
class LevelFeatures:
    """The graph part of :meth:`MGNM.encode` for a batch (NumPy, on the host)."""

    adjacency: np.ndarray  #: ``[B, m, m]`` ``A`` of Eq. 1, zeros at padding
    propagation: np.ndarray  #: ``[B, m, m]`` what the layers propagate with, zeros at padding
    levels: np.ndarray  #: ``[B, L+1, m, d]`` ``H^{(0)} .. H^{(L)}``
    mask: np.ndarray  #: ``bool [B, m]`` valid positions
    adjacency_formula: str  #: ``A`` as this model computes it (:func:`adjacency_formula`)
    normalized: bool  #: whether ``P`` is Eq. 3's (else the raw ``A``)

    @property
    def propagation_formula(self) -> str:
        return "P = I + D^-1/2 A D^-1/2 (Eq. 3)" if self.normalized else "P = A (raw)"


def adjacency_formula(model: torch.nn.Module) -> str:
    """Eq. 1 as ``model`` computes it, with its adjacency scale and user term."""
    scale = "" if model.adjacency_scale == 1.0 else f"{model.adjacency_scale:g} * "
    product = "x_i[k] x_j[k] x_u[k]" if model.adjacency_user else "x_i[k] x_j[k]"
    return f"A_ij = sigmoid({scale}sum_k {product})"


def require_mgnm(model: torch.nn.Module) -> None:
    """A :class:`MGNMError` unless ``model`` is an MGNM (the baselines have no graph)."""
    from mgnm_pyg.models.mgnm import MGNM

    if not isinstance(model, MGNM):
        raise MGNMError(f"this run's model is {type(model).__name__}, not MGNM: it has no "
                        f"graph, levels or interests to show")


@torch.no_grad()
def level_features(model: torch.nn.Module, users: Tensor, histories: Tensor) -> LevelFeatures:
    r"""``A`` (Eq. 1), ``P = I + D^{-1/2} A D^{-1/2}`` (Eq. 3; the raw ``A`` for a model
    that propagates with it) and the levels ``H^{(l)}``.

    A model trained without the graph (``use_graph=False``) has no adjacency: that is
    a :class:`MGNMError`.

    Shapes:
        - users: ``[B]``; histories: ``[B, m]`` (left-aligned, 0-padded)
    """
    require_mgnm(model)
    if not model.use_graph:
        raise MGNMError("this run was trained without the user-aware graph (use_graph "
                        "false): it has no adjacency to show")
    levels, adj, mask = model.levels(users, histories)
    prop = normalize_adjacency(adj, mask) if model.normalized else adj
    return LevelFeatures(adj.cpu().numpy(), prop.cpu().numpy(),
                         torch.stack(levels, 1).cpu().numpy(), mask.cpu().numpy(),
                         adjacency_formula(model), model.normalized)


@dataclass
class Routing:
    """Interests and final coupling coefficients of every level (NumPy)."""

    interests: np.ndarray  #: ``[B, L+1, K, d]``, equal to ``MGNM.encode(...).interests``
    coupling: np.ndarray  #: ``[B, L+1, K, m]``; valid columns sum to 1 over ``K``
    mask: np.ndarray  #: ``bool [B, m]``


@torch.no_grad()
def routing(model: torch.nn.Module, users: Tensor, histories: Tensor) -> Routing:
    """Interests and coupling coefficients ``c`` of every level, as in ``MGNM.encode``.

    Only the capsule extractor routes; another extractor is a :class:`MGNMError`.

    Shapes:
        - users: ``[B]``; histories: ``[B, m]``
    """
    require_mgnm(model)
    if not model.routes:
        raise MGNMError(f"routing is unavailable: this run's interest extractor is "
                        f"{model.config['extractor']!r}, not the capsule network ('capsule')")
    graph = model.levels(users, histories)
    interests, coupling = model.route(graph)
    mask = graph.mask
    return Routing(interests.cpu().numpy(), coupling.cpu().numpy(), mask.cpu().numpy())


def routing_entropy(coupling: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    r"""Per level, the entropy :math:`-\sum_k c_{kj} \log c_{kj}` (nats) of each valid item.

    ``0`` is a hard assignment to one interest, ``log K`` an even split.

    Shapes:
        - coupling: ``[B, L+1, K, m]``; mask: ``bool [B, m]``
        - output: ``L+1`` arrays of ``[number of valid positions]``
    """
    c = np.clip(coupling, 1e-12, 1.0)
    entropy = -(coupling * np.log(c)).sum(2)  # [B, L+1, m]
    return [entropy[:, level][mask] for level in range(coupling.shape[1])]


def project_2d(points: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Points ``[n, d]`` -> ``[n, 2]`` by PCA (SVD, signs fixed) or t-SNE (scikit-learn)."""
    points = np.asarray(points, dtype=np.float64)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError as exc:
            raise MGNMError("--projection tsne needs scikit-learn (pip install "
                            "scikit-learn); PCA needs nothing") from exc
        perplexity = float(min(30, max(2, (len(points) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(points)
    if method != "pca":
        raise MGNMError(f"unknown projection {method!r}; expected 'pca' or 'tsne'")
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    # An SVD's signs are arbitrary: make each axis's largest loading positive.
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
    out = centred @ axes.T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))  # d = 1 still gives two columns


def strongest_edges(adj: np.ndarray, per_node: int = 2, threshold: float | None = None
                    ) -> list[tuple[int, int, float]]:
    """Edges ``(i, j, A_ij)`` with ``i < j`` kept for drawing, strongest last.

    Without ``threshold``, each node keeps its ``per_node`` strongest other nodes (an
    edge kept by either end is drawn); with it, every pair with ``A_ij >= threshold``.
    Self loops are left out. ``A`` of Eq. 1 is symmetric, so ``(i, j)`` stands for both.
    """
    n = adj.shape[0]
    weights = np.where(np.eye(n, dtype=bool), -np.inf, adj)
    if threshold is not None:
        keep = weights >= threshold
    else:
        keep = np.zeros((n, n), dtype=bool)
        k = min(per_node, n - 1)
        if k > 0:
            top = np.argsort(-weights, axis=1, kind="stable")[:, :k]
            keep[np.repeat(np.arange(n), k), top.ravel()] = True
    keep = np.triu(keep | keep.T, 1)
    edges = [(int(i), int(j), float(adj[i, j])) for i, j in zip(*np.nonzero(keep), strict=True)]
    return sorted(edges, key=lambda e: e[2])


def run_summary(run_dir: str | Path, metric: str = "ndcg@5", protocol: str = "sampled"
                ) -> dict[str, Any]:
    """A run's model settings (``config.json``), one test metric and the epoch it was
    taken at (``test_metrics.json``)."""
    run_dir = Path(run_dir)
    values = {}
    for name in ("config.json", "test_metrics.json"):
        path = run_dir / name
        if not path.is_file():
            raise MGNMError(f"{path}: not found (is {run_dir} a finished training run?)")
        try:
            values[name] = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MGNMError(f"{path}: not valid JSON ({exc})") from exc
    config, test = values["config.json"], values["test_metrics.json"]
    metrics = test.get(protocol)
    if not isinstance(metrics, dict) or metric not in metrics:
        have = sorted(metrics) if isinstance(metrics, dict) else []
        raise MGNMError(f"{run_dir / 'test_metrics.json'}: no {protocol!r} metric {metric!r} "
                        f"(found: {', '.join(have) or 'none'})")
    keys = ("n_layers", "n_interests", "level_pooling", "use_graph", "extractor", "dim", "seed")
    return {"run": str(run_dir), "value": float(metrics[metric]),
            "best_epoch": int(test.get("best_epoch", 0)), **{k: config.get(k) for k in keys}}


def pooling_comparison(run_dir: str | Path, metric: str = "ndcg@5", protocol: str = "sampled",
                       device: str = "auto", datasets: dict[tuple, Any] | None = None,
                       progress: bool = False) -> dict[str, float]:
    """The run's test ``metric`` with the levels max-pooled and sum-pooled at inference.

    The run's best checkpoint is evaluated twice, once with each ``level_pooling``
    (Eq. 15 or the "w/o MaxPool" sum); the weights are the same. ``datasets`` is
    :func:`~mgnm_pyg.training.build.load_data`'s cache, for comparing many runs.
    ``progress`` shows the evaluations' bars.
    """
    from mgnm_pyg.training.evaluation import evaluate
    from mgnm_pyg.training.saved_run import load_run

    _, _, k = metric.partition("@")
    ks = (int(k),) if k.isdigit() else (5,)
    run = load_run(run_dir, device=device, datasets=datasets)
    if not hasattr(run.model, "level_pooling"):
        raise MGNMError(f"{run_dir}: its model ({run.config.model!r}) pools no levels; leave "
                        f"it out or pass --no-pooling")
    saved = run.model.level_pooling
    out = {}
    try:
        for pooling in ("max", "sum"):
            run.model.level_pooling = pooling
            values = evaluate(run.model, run.dataset, "test", protocol, ks, run.config,
                              run.device, progress=progress)
            if metric not in values:
                raise MGNMError(f"unknown metric {metric!r}; the evaluation gives "
                                f"{', '.join(sorted(values))}")
            out[pooling] = values[metric]
    finally:
        run.model.level_pooling = saved
    return out
