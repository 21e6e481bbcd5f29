"""Figures of what MGNM learned, drawn from the arrays of :mod:`mgnm_pyg.insight.arrays`.

Each ``*_figure`` function returns a :class:`matplotlib.figure.Figure` (no pyplot, so no
global state and no display: figures render with the Agg canvas, headless);
:func:`save_figure` writes one atomically. matplotlib is imported inside the functions,
so ``import mgnm_pyg`` never needs it. The graph is drawn with plain matplotlib, so
networkx is not needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mgnm_pyg.files import atomic_path
from mgnm_pyg.insight.arrays import LevelFeatures, Routing, UserHistory, strongest_edges

__all__ = ["FORMATS", "interests_figure", "new_figure", "panels", "save_figure",
           "user_figure"]

FORMATS = ("png", "svg", "pdf")
PANEL = "panel"  # label prefix of the axes that hold a picture (colour bars have none)


def new_figure(width: float, height: float) -> Any:
    """A headless figure (no pyplot) of ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def mark_panel(ax: Any, name: str) -> Any:
    """Label ``ax`` as the picture ``name``, so :func:`panels` finds it."""
    ax.set_label(f"{PANEL}:{name}")
    return ax


def panels(fig: Any) -> list[Any]:
    """The axes of ``fig`` that hold a picture, in drawing order (colour bars left out)."""
    return [ax for ax in fig.axes if str(ax.get_label()).startswith(PANEL + ":")]


def save_figure(fig: Any, path: str | Path, fmt: str = "png", dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as ``fmt`` (png, svg or pdf) atomically."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    # No creation date in svg/pdf, so the same figure gives the same file.
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    return Path(path)


def _item_labels(history: UserHistory, start: int) -> tuple[list[int], list[str]]:
    # Positions in the user's whole sequence (1 = first item ever), and "position: raw id".
    first = history.n_total - len(history.items) + 1
    positions = [first + p for p in range(start, len(history.items))]
    return positions, [f"{first + p}: {history.item_ids[p]}"
                       for p in range(start, len(history.items))]


def _ticks(labels: list[str], most: int = 40) -> tuple[np.ndarray, list[str], int]:
    # Beyond `most` items every n-th one is labelled, so that labels never overlap.
    step = -(-len(labels) // most)
    ticks = np.arange(0, len(labels), step)
    size = 7 if len(labels) <= 20 else 6 if len(labels) <= 30 else 5
    return ticks, [labels[t] for t in ticks], size


def _heatmap(fig: Any, ax: Any, matrix: np.ndarray, labels: list[str], title: str,
             vmax: float | None = None) -> None:
    image = ax.imshow(matrix, cmap="viridis", vmax=vmax, interpolation="nearest")
    ticks, shown, size = _ticks(labels)
    ax.set_xticks(ticks, shown, rotation=90, fontsize=size)
    ax.set_yticks(ticks, shown, fontsize=size)
    ax.set_xlabel("item j (time order: position in sequence: raw id)")
    ax.set_ylabel("item i (oldest at top)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")


def _graph(fig: Any, ax: Any, adj: np.ndarray, numbers: list[int], per_node: int,
           threshold: float | None) -> None:
    from matplotlib.collections import LineCollection

    n = adj.shape[0]
    # Nodes on a circle in time order, the oldest at the top, then clockwise.
    angle = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xy = np.stack([np.cos(angle), np.sin(angle)], 1)
    edges = strongest_edges(adj, per_node=per_node, threshold=threshold)
    if edges:
        w = np.array([e[2] for e in edges])
        lo, hi = float(w.min()), float(w.max())
        width = 0.5 + 3.5 * (w - lo) / (hi - lo if hi > lo else 1.0)
        lines = LineCollection([xy[[i, j]] for i, j, _ in edges], linewidths=width,
                               cmap="plasma", zorder=1)
        lines.set_array(w)
        lines.set_clim(lo, hi if hi > lo else lo + 1e-6)
        ax.add_collection(lines)
        fig.colorbar(lines, ax=ax, shrink=0.8, label="edge weight A_ij")
    ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(n), cmap="Greys", vmin=-n / 3, s=160,
               edgecolors="black", zorder=2)
    for p in range(n):
        ax.text(*(1.13 * xy[p]), str(numbers[p]), ha="center", va="center", fontsize=7)
    rule = (f"every edge with A_ij >= {threshold:g}" if threshold is not None
            else f"each item's {per_node} strongest edges")
    ax.set_title(f"graph of the same items: {rule} ({len(edges)} drawn)\n"
                 f"node = item, numbered as the heatmap rows,\n"
                 f"oldest at the top (light), clockwise in time", fontsize=10)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    ax.axis("off")


def user_figure(history: UserHistory, features: LevelFeatures, routing: Routing | None = None,
                max_items: int = 30, per_node: int = 2, threshold: float | None = None) -> Any:
    """Adjacency ``A``, propagation ``P``, the graph, and one routing strip per level.

    The model saw the whole latest history; only its last ``max_items`` items are drawn
    (``A`` and ``P`` are the corresponding blocks of the full matrices).

    Args:
        history: the user's history (:func:`~mgnm_pyg.insight.arrays.latest_history`).
        features: :func:`~mgnm_pyg.insight.arrays.level_features` of that history (batch of 1).
        routing: :func:`~mgnm_pyg.insight.arrays.routing` of it, or None (no strips).
        max_items: most recent items drawn.
        per_node: edges kept per node in the graph drawing.
        threshold: draw every edge with ``A_ij >= threshold`` instead.
    """
    m = len(history.items)
    start = max(0, m - max_items)
    numbers, labels = _item_labels(history, start)
    adj = features.adjacency[0, start:m, start:m]
    prop = features.propagation[0, start:m, start:m]
    n_levels = 0 if routing is None else routing.coupling.shape[1]
    k = 0 if routing is None else routing.coupling.shape[2]
    strip = 0.3 * k + 0.6  # inches per routing strip: K rows and a title
    fig = new_figure(18, 6.5 + strip * n_levels)
    grid = fig.add_gridspec(1 + n_levels, 3, height_ratios=[6.5] + [strip] * n_levels)
    shown = (f"last {m - start} of {history.n_total} items" if start > 0 or history.n_total > m
             else f"all {m} items")
    fig.suptitle(f"user {history.user}: what MGNM learned on the latest history ({shown} shown; "
                 f"the model saw the last {m})", fontsize=12)
    _heatmap(fig, mark_panel(fig.add_subplot(grid[0, 0]), "adjacency"), adj, labels,
             f"user-aware adjacency A (Eq. 1)\n{features.adjacency_formula}\n"
             f"(values from {adj.min():.4g} to {adj.max():.4g})")
    # P = I + ...: the diagonal (>= 1) would flatten the colours of every edge
    off_diagonal = prop[~np.eye(len(labels), dtype=bool)]
    vmax = float(off_diagonal.max()) if off_diagonal.size and features.normalized else None
    note = ("colours scaled to the off-diagonal\n(the diagonal, >= 1, is off the scale)"
            if features.normalized else "the layers propagate with A itself")
    _heatmap(fig, mark_panel(fig.add_subplot(grid[0, 1]), "propagation"), prop, labels,
             f"propagation {features.propagation_formula}\n{note}", vmax=vmax)
    _graph(fig, mark_panel(fig.add_subplot(grid[0, 2]), "graph"), adj, numbers, per_node,
           threshold)
    if routing is None:
        return fig
    strips = [mark_panel(fig.add_subplot(grid[1 + level, :]), f"routing{level}")
              for level in range(n_levels)]
    image = None
    for level, ax in enumerate(strips):
        coupling = routing.coupling[0, level, :, start:m]
        image = ax.imshow(coupling, cmap="magma", vmin=0.0, vmax=1.0, aspect="auto",
                          interpolation="nearest")
        ax.set_yticks(np.arange(k), [f"interest {i + 1}" for i in range(k)], fontsize=7)
        ticks, tick_labels, size = _ticks(labels)
        ax.set_xticks(ticks, tick_labels if level == n_levels - 1 else [], rotation=90,
                      fontsize=size)
        name = "item embeddings" if level == 0 else f"after graph layer {level}"
        ax.set_title(f"level {level} ({name}): routing of each item to the {k} interests",
                     fontsize=9, loc="left")
    strips[-1].set_xlabel("item (time order: position in sequence: raw id)")
    fig.colorbar(image, ax=strips, label="coupling c_kj\n(each column sums to 1)")
    return fig


def interests_figure(points: np.ndarray, entropies: Sequence[np.ndarray] | None,
                     method: str = "pca") -> Any:
    """2-D projection of interest vectors coloured by level, and routing entropy per level.

    Args:
        points: ``[B, L+1, K, 2]`` projected interest vectors of ``B`` users.
        entropies: per level, the routing entropy of each valid item
            (:func:`~mgnm_pyg.insight.arrays.routing_entropy`); None leaves that panel out.
        method: the projection's name (for the axis labels).
    """
    import matplotlib as mpl
    from matplotlib.lines import Line2D

    n_users, n_levels, n_interests = points.shape[:3]
    colours = mpl.colormaps["viridis"](np.linspace(0.0, 0.9, n_levels))
    markers = "os^Dv<>ph*"
    fig = new_figure(13 if entropies is not None else 7, 5.5)
    grid = fig.add_gridspec(1, 2 if entropies is not None else 1)
    ax = mark_panel(fig.add_subplot(grid[0, 0]), "projection")
    name = method.upper() if method == "pca" else "t-SNE"
    for level in range(n_levels):
        for k in range(n_interests):
            ax.scatter(points[:, level, k, 0], points[:, level, k, 1], s=10, alpha=0.5,
                       color=colours[level], marker=markers[k % len(markers)])
    handles = [Line2D([], [], linestyle="", marker="o", color=colours[level],
                      label=f"level {level}" + (" (item embeddings)" if level == 0 else ""))
               for level in range(n_levels)]
    handles += [Line2D([], [], linestyle="", marker=markers[k % len(markers)], color="grey",
                       label=f"interest {k + 1}") for k in range(n_interests)]
    ax.set_xlabel(f"{name} component 1")
    ax.set_ylabel(f"{name} component 2")
    ax.set_title(f"interest vectors of {n_users} users: {n_interests} per level, "
                 f"{n_levels} levels ({name})\ncolour = level, marker = interest capsule",
                 fontsize=10)
    ax.legend(handles=handles, fontsize=8, ncols=2)
    if entropies is not None:
        ax = mark_panel(fig.add_subplot(grid[0, 1]), "entropy")
        top = np.log(n_interests) if n_interests > 1 else 1.0
        bins = np.linspace(0.0, top * 1.02, 31)
        for level, values in enumerate(entropies):
            ax.hist(values, bins=bins, histtype="step", linewidth=1.8, color=colours[level],
                    density=True, label=f"level {level} (mean {values.mean():.2f})")
        ax.axvline(top, color="grey", linestyle="--", label=f"even split: log K = {top:.2f}")
        ax.set_xlabel("routing entropy of an item over the K interests (nats)")
        ax.set_ylabel("density over the users' items")
        ax.set_title("how sharply the routing assigns items to interests\n"
                     "(0 = one interest, log K = spread evenly)", fontsize=10)
        ax.legend(fontsize=8)
    return fig
