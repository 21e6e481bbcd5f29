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

__all__ = ["FORMATS", "compare_figure", "interests_figure", "panels", "save_figure",
           "training_figure", "user_figure"]

FORMATS = ("png", "svg", "pdf")
PANEL = "panel"  # label prefix of the axes that hold a picture (colour bars have none)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _panel(ax: Any, name: str) -> Any:
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
    fig = _figure(18, 6.5 + strip * n_levels)
    grid = fig.add_gridspec(1 + n_levels, 3, height_ratios=[6.5] + [strip] * n_levels)
    shown = (f"last {m - start} of {history.n_total} items" if start > 0 or history.n_total > m
             else f"all {m} items")
    fig.suptitle(f"user {history.user}: what MGNM learned on the latest history ({shown} shown; "
                 f"the model saw the last {m})", fontsize=12)
    _heatmap(fig, _panel(fig.add_subplot(grid[0, 0]), "adjacency"), adj, labels,
             "user-aware adjacency A (Eq. 1)\nA_ij = sigmoid(sum_k x_i[k] x_j[k] x_u[k])\n"
             f"(values from {adj.min():.4g} to {adj.max():.4g})")
    off_diagonal = prop[~np.eye(len(labels), dtype=bool)]
    vmax = float(off_diagonal.max()) if off_diagonal.size else None
    _heatmap(fig, _panel(fig.add_subplot(grid[0, 1]), "propagation"), prop, labels,
             "propagation P = I + D^-1/2 A D^-1/2 (Eq. 3)\n"
             "colours scaled to the off-diagonal\n(the diagonal, >= 1, is off the scale)",
             vmax=vmax)
    _graph(fig, _panel(fig.add_subplot(grid[0, 2]), "graph"), adj, numbers, per_node,
           threshold)
    if routing is None:
        return fig
    strips = [_panel(fig.add_subplot(grid[1 + level, :]), f"routing{level}")
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
    fig = _figure(13 if entropies is not None else 7, 5.5)
    grid = fig.add_gridspec(1, 2 if entropies is not None else 1)
    ax = _panel(fig.add_subplot(grid[0, 0]), "projection")
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
        ax = _panel(fig.add_subplot(grid[0, 1]), "entropy")
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


def _grouped(ax: Any, rows: list[dict], x: str, group: str, metric: str) -> None:
    # One line per value of `group` (mean over runs sharing x), every run as a dot.
    for value in sorted({r[group] for r in rows}, key=str):
        sub = [r for r in rows if r[group] == value]
        xs = sorted({r[x] for r in sub})
        means = [np.mean([r["value"] for r in sub if r[x] == v]) for v in xs]
        line = ax.plot(xs, means, marker="o", label=f"{'L' if group == 'n_layers' else 'K'}"
                       f" = {value}")[0]
        ax.scatter([r[x] for r in sub], [r["value"] for r in sub], color=line.get_color(),
                   s=12, alpha=0.5)
    ax.set_xticks(sorted({r[x] for r in rows}))
    ax.set_ylabel(f"test {metric}")
    ax.legend(fontsize=8)


def compare_figure(rows: list[dict], pooling: dict[str, dict[str, Any]] | None,
                   metric: str, protocol: str) -> Any:
    """The metric against ``L``, against ``K``, and under max- vs sum-pooling per run.

    Runs with the same ``(L, K)`` are averaged whatever their other settings (seed,
    epochs); every run is also drawn as a dot.

    Args:
        rows: :func:`~mgnm_pyg.insight.arrays.run_summary` of each run.
        pooling: run -> :func:`~mgnm_pyg.insight.arrays.pooling_comparison`, or None (no panel).
        metric, protocol: for the labels.
    """
    fig = _figure(15 if pooling else 10, 4.8)
    grid = fig.add_gridspec(1, 3 if pooling else 2)
    fig.suptitle(f"{len(rows)} runs compared on test {metric} ({protocol} protocol)",
                 fontsize=12)
    ax = _panel(fig.add_subplot(grid[0, 0]), "layers")
    _grouped(ax, rows, "n_layers", "n_interests", metric)
    ax.set_xlabel("graph layers L (levels 0..L)")
    ax.set_title(f"{metric} against the number of levels\n(one line per K: mean over its "
                 f"runs; dots: single runs)", fontsize=10)
    ax = _panel(fig.add_subplot(grid[0, 1]), "interests")
    _grouped(ax, rows, "n_interests", "n_layers", metric)
    ax.set_xlabel("interests K")
    ax.set_title(f"{metric} against the number of interests\n(one line per L: mean over its "
                 f"runs; dots: single runs)", fontsize=10)
    if pooling:
        ax = _panel(fig.add_subplot(grid[0, 2]), "pooling")
        names = [Path(run).name for run in pooling]
        x = np.arange(len(names))
        values = np.array([[pooling[run]["max"], pooling[run]["sum"]] for run in pooling])
        # Paired dots on an axis fitted to the values: the two poolings often differ little.
        ax.vlines(x, values.min(1), values.max(1), color="lightgrey", zorder=1)
        ax.scatter(x, values[:, 0], s=50, marker="o", zorder=2, label="max over levels (Eq. 15)")
        ax.scatter(x, values[:, 1], s=50, marker="s", zorder=2, label="sum over levels")
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_ylabel(f"test {metric}")
        ax.set_title("pooling of the level scores at inference\n(each run re-evaluated, same "
                 "weights)", fontsize=10)
        ax.legend(fontsize=8)
    return fig


def _level_parts(row: dict) -> dict[int, float]:
    """Level -> that level's training loss in one ``metrics.jsonl`` row (the per-level
    parts of ``train_parts``); empty for one-level models and older runs."""
    from mgnm_pyg.models.loss import level_of

    out = {}
    for name, value in row.get("train_parts", {}).items():
        level = level_of(name)
        if level is not None:
            out[level] = float(value)
    return out


def training_figure(logs: dict[str, list[dict]], metric: str = "ndcg@5") -> Any:
    """Each run's training loss per level, and its validation ``metric``, against the epoch.

    A level whose loss climbs back towards ``log 2`` (BCE of a constant score) has stopped
    scoring; runs without per-level parts draw their total training loss instead.

    Args:
        logs: run name -> its :func:`~mgnm_pyg.training.saved_run.read_epoch_log` rows.
        metric: a validation metric of the rows (gauc, ndcg@5, hit@5, mrr@5).
    """
    fig = _figure(11, 4.6)
    loss_ax = _panel(fig.add_subplot(1, 2, 1), "loss")
    valid_ax = _panel(fig.add_subplot(1, 2, 2), "valid")
    styles = ["-", "--", ":", "-."]
    for i, (name, rows) in enumerate(logs.items()):
        epochs = [int(r["epoch"]) for r in rows]
        style = styles[i % len(styles)]
        per_row = [_level_parts(r) for r in rows]
        levels = sorted({lv for parts in per_row for lv in parts})
        if levels:
            for level in levels:
                ys = [parts.get(level, np.nan) for parts in per_row]
                loss_ax.plot(epochs, ys, style, marker="o", color=f"C{level}",
                             label=f"{name}: level {level}")
        else:
            loss_ax.plot(epochs, [float(r["train_loss"]) for r in rows], style, marker="o",
                         color="black", label=f"{name}: total")
        valid_ax.plot(epochs, [float(r["valid"].get(metric, np.nan)) for r in rows], style,
                      marker="o", label=name)
    loss_ax.axhline(np.log(2), color="grey", linewidth=0.8)
    loss_ax.set_title("training loss per level (per row; grey: log 2)", fontsize=10)
    loss_ax.set_xlabel("epoch")
    valid_ax.set_title(f"validation {metric}", fontsize=10)
    valid_ax.set_xlabel("epoch")
    for ax in (loss_ax, valid_ax):
        ax.legend(fontsize=7)
    return fig
