"""Seconds per training epoch against the number of interactions (log-log), from the JSON
reports of ``mgnm-pyg bench --out``; several reports (one thread, two threads) give one
series each per convolution path.

    python benchmarks/scaling_plot.py benchmarks/scaling_cpu.json \
        benchmarks/scaling_cpu_2threads.json --out docs/images/scaling.png

Seconds per epoch = the bench's ``minutes_per_epoch`` x 60 (mean timed iteration x
iterations per epoch). A dashed line of slope 1 through the smallest dataset shows where
linear scaling in the interactions would put the others; history lengths differ between
datasets, so the points need not sit on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mgnm_pyg.errors import DataFormatError


def scaling_points(reports: list[dict]) -> list[dict]:
    """One point per (dataset, conv, device): interactions, seconds per epoch, labels."""
    points = []
    for report in reports:
        device = report["device"]
        where = f"{device['type']}, {device['threads']} thread(s)"
        for row in report["results"]:
            for conv, t in row["train"].items():
                points.append({"dataset": row["dataset"], "conv": conv, "device": where,
                               "interactions": row["n_interactions"],
                               "iterations_per_epoch": row["iterations_per_epoch"],
                               "seconds_per_epoch": t["minutes_per_epoch"] * 60})
    return sorted(points, key=lambda p: p["interactions"])


def plot_scaling(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mgnm_pyg.insight.figures import save_figure

    fig, ax = plt.subplots(figsize=(5.5, 4))
    series = sorted({(p["device"], p["conv"]) for p in points})
    named: set[str] = set()  # each dataset is labelled once, beside its first series
    for device, conv in series:
        mine = [p for p in points if (p["device"], p["conv"]) == (device, conv)]
        ax.plot([p["interactions"] for p in mine], [p["seconds_per_epoch"] for p in mine],
                "o-", label=f"{conv} ({device})")
        for p in (p for p in mine if p["dataset"] not in named):
            named.add(p["dataset"])
            ax.annotate(p["dataset"].removeprefix("synthetic:") + (
                " (synthetic)" if p["dataset"].startswith("synthetic") else ""),
                (p["interactions"], p["seconds_per_epoch"]), textcoords="offset points",
                xytext=(4, -10), fontsize=7)
    first = points[0]
    xs = [first["interactions"], points[-1]["interactions"]]
    ax.plot(xs, [first["seconds_per_epoch"] * x / xs[0] for x in xs], "--", color="grey",
            label="proportional to interactions")
    ax.set(xscale="log", yscale="log", xlabel="interactions in the dataset",
           ylabel="seconds per training epoch", title="MGNM training time per epoch")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def read_report(path: Path) -> dict:
    try:
        report = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(str(path), f"not a readable bench report ({exc})") from None
    if not isinstance(report, dict) or "results" not in report or "device" not in report:
        raise DataFormatError(str(path), "expected the JSON of `mgnm-pyg bench --out` "
                                         "(keys 'device' and 'results')")
    return report


@click.command()
@click.argument("reports", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("docs/images/scaling.png"), show_default=True)
def main(reports: tuple[Path, ...], out: Path) -> None:
    """Plot seconds per epoch against interactions from bench JSON REPORTS."""
    try:
        points = scaling_points([read_report(p) for p in reports])
    except DataFormatError as exc:
        raise click.ClickException(str(exc)) from None
    if not points:
        raise click.ClickException("the reports hold no training measurements")
    plot_scaling(points, out)
    click.echo("| dataset | interactions | iterations/epoch | conv | device | s/epoch |")
    click.echo("|---|---|---|---|---|---|")
    for p in points:
        click.echo(f"| {p['dataset']} | {p['interactions']:,} | {p['iterations_per_epoch']:,} "
                   f"| {p['conv']} | {p['device']} | {p['seconds_per_epoch']:.1f} |")
    click.echo(f"wrote {out}", err=True)


if __name__ == "__main__":
    sys.exit(main())
