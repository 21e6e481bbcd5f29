"""``mgnm-pyg prepare FORMAT PATH``: a raw interaction log to a prepared dataset folder."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import click
from mgnm_pyg.cli.options import user_errors

from mgnm_pyg.data.readers import FORMATS
from mgnm_pyg.training.config import SEED_MAX

_FORMAT_HELP = "\n".join(f"  {name:15} {spec.description}" for name, spec in FORMATS.items())


def _default_name(path: Path) -> str:
    """The file's stem without a compression suffix: ``reviews.json.gz`` -> ``reviews``."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem or name


def _check_name(name: str) -> str:
    if not name or name.startswith(".") or any(c in name for c in "/\\:") or name.strip() != name:
        raise click.BadParameter(
            f"{name!r} cannot be a folder name; use letters, digits, '-', '_' or '.'",
            param_hint="--name")
    return name


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"must be a finite number; got {value}")
    return value


def _step(message: str) -> float:
    click.echo(f"{message} ...", err=True)
    return time.perf_counter()


def print_card(card: dict[str, Any]) -> None:
    """Statistics and split sizes of a prepared dataset's card, one per line."""
    stats, splits = card.get("statistics", {}), card.get("splits", {})
    rows = [
        ("users", stats.get("users")), ("items", stats.get("items")),
        ("interactions", stats.get("interactions")), ("records", stats.get("records")),
        ("rows read", stats.get("rows_read")),
        ("dropped: rating <= threshold", stats.get("rows_filtered_by_rating")),
        ("dropped: duplicate (user, item, time)", stats.get("duplicates_dropped")),
        ("dropped: k-core", stats.get("rows_filtered_by_kcore")),
        ("dropped users (< 2 interactions)", stats.get("users_dropped")),
        ("dropped: eval records, user not in train", stats.get("eval_records_dropped_no_train")),
        ("dropped: eval records, no item left to sample",
         stats.get("eval_records_dropped_no_negatives")),
        ("mean sequence length", stats.get("mean_sequence_length")),
        ("max sequence length", stats.get("max_sequence_length")),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        if value is not None:
            shown = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
            click.echo(f"  {label:<{width}}  {shown}")
    split = card.get("options", {}).get("split", "?")
    sizes = ", ".join(f"{key} {splits.get(key, 0):,}" for key in ("train", "valid", "test"))
    click.echo(f"  split ({split}): {sizes} records")
    form = card.get("candidates", {}).get("form")
    if form is not None:
        click.echo(f"  evaluation candidates: {form}")


@click.command(
    "prepare",
    help="Turn a raw interaction log into a prepared dataset (Parquet + card.json).\n\n"
    "\b\nFORMAT is one of:\n" + _FORMAT_HELP,
)
@click.argument("fmt", metavar="FORMAT", type=click.Choice(list(FORMATS)))
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--name", default=None,
              help="Dataset name and folder name [default: the file's stem]")
@click.option("--split", type=click.Choice(["per-user", "global-time", "leave-one-out"]),
              default="per-user", show_default=True,
              help="7:1:2 per user's sequence (paper text), over all records by time "
              "(authors' code), or the last item per user for test.")
@click.option("--max-len", type=click.IntRange(min=1), default=100, show_default=True,
              help="Longest history a record keeps.")
@click.option("--rating-threshold", type=float, default=2.0, show_default=True,
              callback=_finite,
              help="Positives are ratings above this (rows without a rating are kept).")
@click.option("--k-core", type=click.IntRange(min=1), default=None,
              help="Keep only users and items with at least this many interactions.")
@click.option("--eval-negatives", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Sampled negatives per validation/test record (a fixed function of the "
              "seed, the record and the user's items).")
@click.option("--candidates", "candidate_form",
              type=click.Choice(["auto", "stored", "generated"]), default="auto",
              show_default=True,
              help="stored: compute the evaluation negatives now and write them to the "
              "folder; generated: keep only their seed and compute each batch's when "
              "evaluating (no memory or disk for them, identical candidates); auto: stored "
              "up to 256 MiB of them, else generated.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=0, show_default=True,
              help="Seed of the evaluation candidates.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where prepared datasets live [default: $MGNM_DATA_DIR or ./datasets]")
@click.option("--force", is_flag=True, help="Prepare again even if a cached copy matches.")
@click.option("--user-col", default=None, help="table: user column [default: user]")
@click.option("--item-col", default=None, help="table: item column [default: item]")
@click.option("--time-col", default=None, help="table: time column, Unix seconds [default: none]")
@click.option("--rating-col", default=None, help="table: rating column [default: none]")
@click.option("--sep", default=None,
              help="table: field separator [default: tab for .tsv, else comma]")
@click.option("--mixed-ids", is_flag=True,
              help="sequences: accept a few ids that are not integers among integer ids "
                   "(by default such an id is reported as a likely typo).")
@user_errors
def prepare(fmt: str, path: Path, name: str | None, split: str, max_len: int,
            rating_threshold: float, k_core: int | None, eval_negatives: int,
            candidate_form: str, seed: int, data_dir: Path | None, force: bool,
            **table: str | None) -> None:
    from mgnm_pyg.data.readers import read_interactions
    from mgnm_pyg.data.readers_checks import check_file
    from mgnm_pyg.data.split_checks import split_sizes, split_warnings
    from mgnm_pyg.data.store import data_dir as default_data_dir
    from mgnm_pyg.data.store import prepare_cached

    mixed_ids = table.pop("mixed_ids")
    reader_options: dict[str, Any] = {k: v for k, v in table.items() if v is not None}
    if mixed_ids:
        reader_options["mixed_ids"] = True
    foreign = [k for k in reader_options if k not in FORMATS[fmt].options]
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        owner = "sequences" if foreign == ["mixed_ids"] else "table"
        raise click.UsageError(f"{flags} only apply to the {owner} format, not {fmt}")
    name = _check_name(name if name is not None else _default_name(path))
    root = data_dir if data_dir is not None else default_data_dir()

    def load_frame():
        start = _step(f"Reading {path} as {fmt}")
        frame = read_interactions(fmt, path, **reader_options)
        click.echo(f"  read {frame.height:,} rows in {time.perf_counter() - start:.1f} s",
                   err=True)
        _step("Filtering, indexing, splitting and drawing evaluation candidates")
        return frame

    start = _step(f"Hashing {path} and looking for a cached copy in {root}")
    check_file(path)  # before hashing it, with the readers' messages
    dataset, reused = prepare_cached(
        load_frame, name=name, source_path=path.resolve(), source_format=fmt,
        reader_options=reader_options, root=root, force=force, split=split, max_len=max_len,
        rating_threshold=rating_threshold, k_core=k_core, n_eval_negatives=eval_negatives,
        seed=seed, candidates=candidate_form,
    )
    elapsed = time.perf_counter() - start
    if reused:
        click.echo(f"Reused the cached dataset {name!r} in {root / name}: same input file and "
                   "options (use --force to prepare it again).")
    else:
        click.echo(f"Prepared dataset {name!r} in {root / name} ({elapsed:.1f} s).")
    print_card(dataset.card)
    for warning in split_warnings(split_sizes(dataset)):
        click.echo(f"Warning: {warning}.", err=True)
