"""``mgnm-pyg visualize``: pictures of what a trained run learned (adjacency, interests, runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from mgnm_pyg.cli.options import (
    config_option,
    data_override_option,
    progress_option,
    run_dir_argument,
    user_errors,
)


def _output_options(func: Callable) -> Callable:
    func = click.option("--dpi", type=click.IntRange(min=10), default=100, show_default=True,
                        help="Resolution of a PNG (dots per inch).")(func)
    func = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        metavar="FILE", help="Where to write the picture (default: in the "
                        "run folder, or ./compare.FORMAT for compare).")(func)
    return click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]),
                        default=None, help="Picture format [default: the suffix of --out, "
                        "else png].")(func)


def _target(out: Path | None, fmt: str | None, default: Path) -> tuple[Path, str]:
    if fmt is None:
        suffix = out.suffix.lstrip(".").lower() if out is not None else ""
        fmt = suffix if suffix in ("png", "svg", "pdf") else "png"
    return (out if out is not None else default.with_suffix(f".{fmt}")), fmt


def _save(fig: Any, out: Path | None, fmt: str | None, dpi: int, default: Path) -> None:
    from mgnm_pyg.insight.figures import panels, save_figure

    path, fmt = _target(out, fmt, default)
    save_figure(fig, path, fmt, dpi=dpi)
    click.echo(f"wrote {path} ({len(panels(fig))} panels)")


def _safe(name: str) -> str:
    # A raw id in a file name: keep letters, digits, '-', '_' and '.'.
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "user"


@click.group("visualize")
def visualize() -> None:
    """Draw what a trained run learned: adjacency and routing of one user, interests, runs.

    Each subcommand writes one picture (PNG by default) and prints its path.
    """


@visualize.command("adjacency")
@run_dir_argument
@click.option("--user", required=True, metavar="RAW_ID", help="The user's raw id.")
@click.option("--max-items", type=click.IntRange(min=2), default=30, show_default=True,
              help="Draw the most recent items only (the model still sees the whole latest "
                   "history, up to max_len).")
@click.option("--edges-per-node", type=click.IntRange(min=1), default=2, show_default=True,
              help="Graph drawing: keep each item's strongest edges.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Graph drawing: keep every edge with A_ij >= this instead.")
@data_override_option
@config_option("device")
@_output_options
@user_errors
def adjacency(run_dir: Path, user: str, max_items: int, edges_per_node: int,
              threshold: float | None, data: str | None, device: str, out: Path | None,
              fmt: str | None, dpi: int) -> None:
    """A, P, the graph and the routing of one user's latest history.

    Heatmaps of the learned adjacency A (Eq. 1) and the propagation matrix P (Eq. 3), the
    same items as a graph, and per level how the capsule routing assigns each item to
    the K interests.
    """
    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.insight.arrays import latest_history, level_features, routing
    from mgnm_pyg.insight.figures import user_figure
    from mgnm_pyg.nn.capsule import seeded_draws
    from mgnm_pyg.training.saved_run import load_run

    run = load_run(run_dir, data=data, device=device)
    history = latest_history(run.dataset, user, run.config.max_len)
    users, histories = history.batch(run.device)
    with seeded_draws(run.config.seed, run.device):  # repeatable under random routing
        features = level_features(run.model, users, histories)
        try:
            routes = routing(run.model, users, histories)
        except MGNMError as exc:
            click.echo(f"note: {exc}; the routing strips are left out", err=True)
            routes = None
    fig = user_figure(history, features, routes, max_items=max_items, per_node=edges_per_node,
                      threshold=threshold)
    _save(fig, out, fmt, dpi, run_dir / "plots" / f"adjacency-{_safe(user)}")


@visualize.command("interests")
@run_dir_argument
@click.option("--users", "n_users", type=click.IntRange(min=1), default=200, show_default=True,
              help="Number of users drawn (a seeded random sample; all if fewer).")
@click.option("--projection", type=click.Choice(["pca", "tsne"]), default="pca",
              show_default=True, help="2-D projection (tsne needs scikit-learn).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the user sample and of t-SNE.")
@data_override_option
@config_option("device")
@_output_options
@user_errors
def interests(run_dir: Path, n_users: int, projection: str, seed: int, data: str | None,
              device: str, out: Path | None, fmt: str | None, dpi: int) -> None:
    """Interest vectors by level in 2-D, and the routing entropy.

    The interest vectors of N users at every level, projected to 2-D (the analogue of
    the paper's Figures 5-6), and how sharply the routing assigns items at each level.
    """
    import numpy as np
    import torch

    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.insight.arrays import project_2d, require_mgnm, routing, routing_entropy
    from mgnm_pyg.insight.figures import interests_figure
    from mgnm_pyg.nn.capsule import seeded_draws
    from mgnm_pyg.training.saved_run import load_run

    run = load_run(run_dir, data=data, device=device)
    require_mgnm(run.model)
    ds = run.dataset
    lengths = np.diff(ds.offsets)
    candidates = np.flatnonzero(lengths > 0)
    if candidates.size == 0:
        raise MGNMError(f"dataset {ds.name!r} has no user with a history")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, min(n_users, candidates.size), replace=False))
    histories = torch.as_tensor(ds.histories(chosen, lengths[chosen], run.config.max_len),
                                device=run.device)
    users = torch.as_tensor(chosen, device=run.device)
    entropies = None
    with seeded_draws(run.config.seed, run.device):  # repeatable under random routing
        try:
            routes = routing(run.model, users, histories)
            vectors = routes.interests
            entropies = routing_entropy(routes.coupling, routes.mask)
        except MGNMError as exc:
            click.echo(f"note: {exc}; the entropy panel is left out", err=True)
            with torch.no_grad():
                vectors = run.model.encode(users, histories).interests.cpu().numpy()
    points = project_2d(vectors.reshape(-1, vectors.shape[-1]), projection, seed=seed)
    fig = interests_figure(points.reshape(*vectors.shape[:3], 2), entropies, projection)
    _save(fig, out, fmt, dpi, run_dir / "plots" / f"interests-{projection}")


@visualize.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metric", default="ndcg@5", show_default=True,
              help="Test metric drawn (a key of test_metrics.json, e.g. gauc, hit@5).")
@click.option("--protocol", type=click.Choice(["sampled", "full"]), default="sampled",
              show_default=True, help="Evaluation protocol of the metric.")
@click.option("--pooling/--no-pooling", default=True, show_default=True,
              help="Re-evaluate each run on the test split with max- and with sum-pooling "
                   "of the levels (slow on big data).")
@config_option("device")
@_output_options
@progress_option
@user_errors
def compare(run_dirs: tuple[Path, ...], metric: str, protocol: str, pooling: bool, device: str,
            out: Path | None, fmt: str | None, dpi: int, progress: bool) -> None:
    """Several runs: a metric against L, against K, and by pooling.

    Settings come from each run's config.json and the metric from its test_metrics.json;
    the pooling panel re-evaluates each run with max- and with sum-pooling of the levels.
    """
    from mgnm_pyg.insight.arrays import pooling_comparison, run_summary
    from mgnm_pyg.insight.charts import compare_figure

    rows = [run_summary(run, metric, protocol) for run in run_dirs]
    pooled = None
    if pooling:
        pooled = {}
        for run in run_dirs:
            pooled[str(run)] = values = pooling_comparison(run, metric, protocol, device,
                                                           progress=progress)
            click.echo(f"{run}: {metric} max-pooled {values['max']:.4f}, "
                       f"sum-pooled {values['sum']:.4f}")
    fig = compare_figure(rows, pooled, metric, protocol)
    _save(fig, out, fmt, dpi, Path("compare"))


@visualize.command("training")
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metric", type=click.Choice(["gauc", "ndcg@5", "hit@5", "mrr@5"]),
              default="ndcg@5", show_default=True, help="Validation metric drawn.")
@_output_options
@user_errors
def training(run_dirs: tuple[Path, ...], metric: str, out: Path | None, fmt: str | None,
             dpi: int) -> None:
    """Training curves of runs: the loss of each level, and a validation metric, by epoch.

    Read from each run's metrics.jsonl (runs still training are drawn up to their last
    finished epoch). Per-level losses come from the ``train_parts`` of MGNM runs.
    """
    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.insight.charts import training_figure
    from mgnm_pyg.training.saved_run import read_epoch_log

    logs = {}
    for run in run_dirs:
        rows = read_epoch_log(run)
        if not rows:
            raise MGNMError(f"{run / 'metrics.jsonl'}: no finished epoch yet")
        logs[run.name if run.name not in logs else str(run)] = rows
    default = run_dirs[0] / "plots" / "training" if len(run_dirs) == 1 else Path("training")
    _save(training_figure(logs, metric), out, fmt, dpi, default)
