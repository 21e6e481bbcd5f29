"""Charts of runs, not of one user: a metric across settings (Figures 3, 4 and 7) and
training curves (the loss per level, the validation metric per epoch).

Headless like :mod:`mgnm_pyg.insight.figures` (no pyplot); write them with its
:func:`~mgnm_pyg.insight.figures.save_figure`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mgnm_pyg.insight.figures import mark_panel, new_figure

__all__ = ["compare_figure", "training_figure"]


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
    fig = new_figure(15 if pooling else 10, 4.8)
    grid = fig.add_gridspec(1, 3 if pooling else 2)
    fig.suptitle(f"{len(rows)} runs compared on test {metric} ({protocol} protocol)",
                 fontsize=12)
    ax = mark_panel(fig.add_subplot(grid[0, 0]), "layers")
    _grouped(ax, rows, "n_layers", "n_interests", metric)
    ax.set_xlabel("graph layers L (levels 0..L)")
    ax.set_title(f"{metric} against the number of levels\n(one line per K: mean over its "
                 f"runs; dots: single runs)", fontsize=10)
    ax = mark_panel(fig.add_subplot(grid[0, 1]), "interests")
    _grouped(ax, rows, "n_interests", "n_layers", metric)
    ax.set_xlabel("interests K")
    ax.set_title(f"{metric} against the number of interests\n(one line per L: mean over its "
                 f"runs; dots: single runs)", fontsize=10)
    if pooling:
        ax = mark_panel(fig.add_subplot(grid[0, 2]), "pooling")
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
    fig = new_figure(11, 4.6)
    loss_ax = mark_panel(fig.add_subplot(1, 2, 1), "loss")
    valid_ax = mark_panel(fig.add_subplot(1, 2, 2), "valid")
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
