"""``mgnm-pyg datasets``: the prepared datasets and their statistics, as a table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from mgnm_pyg.cli.options import user_errors

_COLUMNS = ("name", "users", "items", "interactions", "split", "train", "valid", "test",
            "source")


def _source(card: dict[str, Any]) -> str:
    source = card.get("source") or {}
    if not isinstance(source, dict) or not source.get("path"):
        return str(source.get("format") or "-") if isinstance(source, dict) else "-"
    return f"{Path(source['path']).name} ({source.get('format') or '?'})"


def _row(folder: Path) -> tuple[str, ...]:
    """One table row from ``folder/card.json``; a damaged card still gets a row."""
    try:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        stats, splits = card["statistics"], card.get("splits", {})
        cells = [stats.get("users"), stats.get("items"), stats.get("interactions"),
                 card.get("options", {}).get("split"),
                 *(splits.get(k) for k in ("train", "valid", "test"))]
        shown = [f"{c:,}" if isinstance(c, int) else str(c if c is not None else "-")
                 for c in cells]
        return (folder.name, *shown, _source(card))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return (folder.name, *(["?"] * 7), f"unreadable card.json ({type(exc).__name__})")


def format_table(rows: list[tuple[str, ...]]) -> str:
    """A plain-text table: a header, a rule, and the rows; numbers right-aligned."""
    table = [_COLUMNS, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
    right = {"users", "items", "interactions", "train", "valid", "test"}

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.rjust(w) if col in right else cell.ljust(w)
                         for cell, w, col in zip(row, widths, _COLUMNS, strict=True)).rstrip()

    return "\n".join([line(_COLUMNS), "  ".join("-" * w for w in widths),
                      *(line(r) for r in rows)])


@click.command("datasets")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where prepared datasets live [default: $MGNM_DATA_DIR or ./datasets]")
@user_errors
def datasets(data_dir: Path | None) -> None:
    """List prepared datasets with their statistics."""
    from mgnm_pyg.data.store import data_dir as default_data_dir
    from mgnm_pyg.data.store import list_datasets

    root = data_dir if data_dir is not None else default_data_dir()
    names = list_datasets(root)
    if not names:
        click.echo(f"No prepared datasets in {root}. Make one with "
                   "`mgnm-pyg prepare FORMAT PATH` (see `mgnm-pyg prepare --help`).")
        return
    click.echo(f"Prepared datasets in {root}:\n")
    click.echo(format_table([_row(root / name) for name in names]))
