"""Readers of raw interaction logs: Amazon CSV and JSON, S3Rec sequences, RecBole, tables.

Every reader returns a :class:`polars.DataFrame` with exactly these columns:

===========  =========  =====================================================
``user``     String     raw user id
``item``     String     raw item id
``rating``   Float64    the rating; all null where the format has none
``time``     Int64      Unix seconds; all null where the format has none
``order``    Int64      0-based row order in the file (blank lines skipped);
                        for ``sequences`` it follows line, then position
===========  =========  =====================================================

Duplicate rows are kept: the preparation core resolves them and counts them. Ids are
taken verbatim (spaces are part of an id); numbers may carry surrounding spaces, and a
non-integer time is floored to whole seconds.
Bad input raises :class:`~mgnm_pyg.errors.DataFormatError` naming the file, and where
known the line and column. Text files may be gzip-compressed.

CSV and JSON files go through polars' lazy readers with only the kept columns selected
and the streaming engine, so a file of several GB needs memory for those columns, not
for the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mgnm_pyg.data import readers_checks as checks
from mgnm_pyg.data.amazon_json import read_amazon_json
from mgnm_pyg.errors import DataFormatError

__all__ = ["FORMATS", "ReaderFormat", "file_sha256", "read_interactions"]


def _fixed_csv(path: Path, plain: Path, names: tuple[str, ...], label: str) -> pl.DataFrame:
    """A headerless, unquoted, comma-separated file whose columns are ``names``."""
    what = f"{len(names)} comma-separated fields ({label})"
    try:
        df = pl.scan_csv(
            plain, has_header=False, schema=dict.fromkeys(names, pl.String),
            quote_char=None, missing_columns="insert", raise_if_empty=False,
            row_index_name="row",
        ).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        checks.first_bad_line(plain, path, ",", len(names), what)
        raise DataFormatError(path, f"could not be read as {what}: {exc}") from None
    return checks.finalize(
        df, path, line_offset=1,
        describe_missing=lambda line, _c: checks.field_count_error(
            plain, path, line, ",", len(names), what),
    )


def read_amazon2014_csv(path: Path, plain: Path) -> pl.DataFrame:
    return _fixed_csv(path, plain, ("user", "item", "rating", "time"), "user,item,rating,timestamp")


def read_amazon2018_csv(path: Path, plain: Path) -> pl.DataFrame:
    return _fixed_csv(path, plain, ("item", "user", "rating", "time"), "item,user,rating,timestamp")


def read_sequences(path: Path, plain: Path, mixed_ids: bool = False) -> pl.DataFrame:
    """One user per line: ``user item item ...`` in chronological order, no time.

    Unless ``mixed_ids``, a file whose user (or item) ids are nearly all integers may not
    hold a few that are not: such an id is almost surely a typo
    (:func:`~mgnm_pyg.data.readers_checks.check_integer_ids`).
    """
    data = plain.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFormatError(path, "invalid UTF-8; expected UTF-8 text", line=line) from None
    lines = (
        pl.DataFrame({"text": [text]})
        .select(pl.col("text").str.split("\n").explode())
        .with_row_index("line", offset=1)
        .with_columns(tokens=pl.col("text").str.extract_all(r"\S+"))
        .filter(pl.col("tokens").list.len() > 0)
    )
    if lines.height == 0:
        raise DataFormatError(path, "no interactions found; expected `user item item ...` lines")
    lonely = lines.filter(pl.col("tokens").list.len() < 2)
    if lonely.height:
        raise DataFormatError(
            path, f"expected a user id followed by at least one item id, found "
            f"{lonely['text'][0].strip()!r}", line=int(lonely["line"][0]),
        )
    if not mixed_ids:
        checks.check_integer_ids(lines, path)
    return lines.select(
        user=pl.col("tokens").list.first(), item=pl.col("tokens").list.slice(1)
    ).explode("item").select(
        "user", "item", rating=pl.lit(None, pl.Float64), time=pl.lit(None, pl.Int64),
        order=pl.int_range(pl.len(), dtype=pl.Int64),
    )


def _delimited_with_header(
    path: Path, plain: Path, sep: str, quote_char: str | None, what: str,
    choose: Callable[[list[str]], list[tuple[str, str]]],
) -> pl.DataFrame:
    """A delimited file with a header line, every column read as text.

    ``choose(header names)`` returns the ``(role, column)`` pairs to keep (it may raise
    :class:`DataFormatError`); only those columns are parsed. The result has ``row``
    (0-based data row) and one column per role.
    """
    try:
        lazy = pl.scan_csv(
            plain, separator=sep, infer_schema=False, quote_char=quote_char,
            raise_if_empty=False, missing_columns="insert", row_index_name="row",
        )
        kept = choose([c for c in lazy.collect_schema().names() if c != "row"])
        return lazy.select("row", *(pl.col(c).alias(r) for r, c in kept)).collect(
            engine="streaming")
    except pl.exceptions.PolarsError as exc:
        width = checks.count_fields(checks.read_line(plain, 1), sep, quote_char)
        checks.first_bad_line(plain, path, sep, width, what, first=2, quote_char=quote_char)
        raise DataFormatError(path, f"could not be read as {what}: {exc}") from None


def _require(path: Path, found: list[str], wanted: dict[str, str | None]) -> None:
    """Raise when a named column is absent, listing the columns the file has."""
    for role, name in wanted.items():
        if name is not None and name not in found:
            raise DataFormatError(
                path, f"no {role} column named {name!r}; the columns found are {found}"
            )


def read_recbole(path: Path, plain: Path) -> pl.DataFrame:
    """RecBole atomic ``.inter``: tab-separated, header ``name:type`` (``user_id:token``...)."""
    roles = {"user": "user_id", "item": "item_id", "rating": "rating", "time": "timestamp"}

    def choose(columns: list[str]) -> list[tuple[str, str]]:
        names = {c.lstrip("\ufeff").split(":")[0]: c for c in columns}
        _require(path, list(names), {"user": "user_id", "item": "item_id"})
        return [(r, names[f]) for r, f in roles.items() if f in names]

    df = _delimited_with_header(path, plain, "\t", None, "a tab-separated RecBole .inter file",
                                choose)
    return checks.finalize(df, path, line_offset=2)


def read_table(
    path: Path,
    plain: Path,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = None,
    rating_col: str | None = None,
    sep: str | None = None,
) -> pl.DataFrame:
    """CSV/TSV (header line, quoted fields allowed) or Parquet with named columns.

    The separator defaults to a tab for ``.tsv``/``.tab`` names and a comma otherwise.
    Line numbers in messages assume one record per line (no quoted line breaks).
    """
    wanted = {"user": user_col, "item": item_col, "time": time_col, "rating": rating_col}
    with open(plain, "rb") as fh:
        is_parquet = fh.read(4) == b"PAR1"
    if is_parquet or path.suffix.lower() in (".parquet", ".pq"):
        try:
            found = list(pl.read_parquet_schema(plain))
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataFormatError(path, f"not a readable Parquet file ({exc})") from None
        _require(path, found, wanted)
        df = pl.read_parquet(plain, columns=[c for c in wanted.values() if c is not None])
        df, offset = df.with_row_index("row"), None
        if time_col is not None and df.schema[time_col] in (pl.Date, pl.Datetime):
            df = df.with_columns(pl.col(time_col).cast(pl.Datetime("ms")).dt.epoch("s"))
    else:
        if sep is None:
            sep = "\t" if path.name.lower().removesuffix(".gz").endswith((".tsv", ".tab")) else ","
        if len(sep) != 1:
            raise DataFormatError(path, f"the separator must be one character, got {sep!r}")

        def choose(columns: list[str]) -> list[tuple[str, str]]:
            names = {c.lstrip("\ufeff"): c for c in columns}
            _require(path, list(names), wanted)
            return [(r, names[c]) for r, c in wanted.items() if c is not None]

        df = _delimited_with_header(path, plain, sep, '"', f"a table separated by {sep!r}",
                                    choose)
        return checks.finalize(df, path, line_offset=2)
    df = df.select("row", *(pl.col(c).alias(r) for r, c in wanted.items() if c is not None))
    return checks.finalize(df, path, line_offset=offset)


@dataclass(frozen=True)
class ReaderFormat:
    """A raw format: its reader, a one-line description and the options it takes."""

    read: Callable[..., pl.DataFrame]
    description: str
    options: tuple[str, ...] = ()


FORMATS: dict[str, ReaderFormat] = {
    "amazon2014-csv": ReaderFormat(
        read_amazon2014_csv, "Amazon 2014 ratings CSV, no header: user,item,rating,timestamp"),
    "amazon2018-csv": ReaderFormat(
        read_amazon2018_csv, "Amazon 2018 ratings CSV, no header: item,user,rating,timestamp"),
    "amazon-json": ReaderFormat(
        read_amazon_json, "Amazon review JSON lines (2014, 2018 or 2023; plain or .gz)"),
    "sequences": ReaderFormat(
        read_sequences, "one user per line: `user item item ...`, oldest first, no times",
        ("mixed_ids",)),
    "recbole": ReaderFormat(
        read_recbole, "RecBole atomic .inter file (tab-separated, user_id:token header)"),
    "table": ReaderFormat(
        read_table, "CSV/TSV/Parquet with named columns (--user-col, --item-col, ...)",
        ("user_col", "item_col", "time_col", "rating_col", "sep")),
}


def read_interactions(fmt: str, path: str | Path, **options) -> pl.DataFrame:
    """Read a raw interaction log into the common schema (see the module docstring).

    Args:
        fmt: a key of :data:`FORMATS`.
        path: the file; text formats may be gzip-compressed.
        **options: format options (only ``table`` takes any); ``None`` values are ignored.

    Raises:
        DataFormatError: unknown format or option, missing or empty file, bad content.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DataFormatError(path, f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    spec = FORMATS[fmt]
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = f"it takes {', '.join(spec.options)}" if spec.options else "it takes none"
        raise DataFormatError(path, f"format {fmt!r} has no option {unknown[0]!r}; {takes}")
    checks.check_file(path)
    with checks.plain_file(path) as plain:
        df = spec.read(path, plain, **options)
    return df.select(pl.col(c).cast(t) for c, t in checks.SCHEMA.items())


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large logs never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
