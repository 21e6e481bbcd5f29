"""Shared plumbing of the raw-format readers: decompression, validation, error location.

Readers parse with polars first. Only when parsing or casting fails do the helpers here
walk the file line by line to name the first offending line, so a clean file is never
scanned in Python.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import math
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from mgnm_pyg.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
# Columns of every reader's output, in order, with their dtypes.
SCHEMA: dict[str, pl.DataType] = {
    "user": pl.String(),
    "item": pl.String(),
    "rating": pl.Float64(),
    "time": pl.Int64(),
    "order": pl.Int64(),
}


def check_file(path: Path) -> None:
    """Raise a :class:`DataFormatError` unless ``path`` is a non-empty regular file."""
    if not path.exists():
        raise DataFormatError(path, "file not found")
    if not path.is_file():
        raise DataFormatError(path, "expected a file, found a folder or a special file")
    if path.stat().st_size == 0:
        raise DataFormatError(path, "the file is empty; expected interactions")


@contextlib.contextmanager
def plain_file(path: Path) -> Iterator[Path]:
    """Yield a path to the uncompressed bytes of ``path``.

    A gzip file (recognised by its magic bytes) is streamed to a temporary file, so a
    truncated or corrupt archive is reported instead of being read in part.
    """
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != GZIP_MAGIC:
        if path.suffix.lower() == ".gz":
            raise DataFormatError(
                path, "the name ends in .gz but the file is not gzip-compressed "
                f"(expected the magic bytes 1f 8b, found {magic.hex(' ') or 'nothing'})"
            )
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mgnm-read-") as tmp:
        out = Path(tmp) / path.name.removesuffix(".gz").removesuffix(".GZ")
        try:
            with gzip.open(path, "rb") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(path, f"not a valid gzip file ({exc})") from None
        if out.stat().st_size == 0:
            raise DataFormatError(path, "the file is empty once decompressed")
        yield out


def iter_lines(path: Path, start: int = 1) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, raw bytes without the line break)`` from line ``start`` on."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(itertools.islice(fh, start - 1, None), start):
            yield number, raw.rstrip(b"\r\n")


def read_line(path: Path, line: int) -> str:
    """The text of one line of ``path`` (1-based), decoded leniently for messages."""
    for _, raw in iter_lines(path, line):
        return raw.decode("utf-8", errors="replace")
    return ""


def count_fields(text: str, sep: str, quote_char: str | None) -> int:
    """Fields of one line; with a quote character, a quoted separator does not split."""
    if quote_char is None:
        return len(text.split(sep))
    try:
        rows = list(csv.reader([text], delimiter=sep, quotechar=quote_char))
    except csv.Error:
        # A bare carriage return inside the line (``"\ra"``) is an error to the csv module;
        # count naively so the caller can still name the line instead of crashing.
        return len(text.split(sep))
    return max((len(r) for r in rows), default=1)


def first_bad_line(
    plain: Path, shown: Path, sep: str, n_fields: int, what: str, first: int = 1,
    quote_char: str | None = None,
) -> None:
    """Raise for the first line from ``first`` on that is not UTF-8 or has too many fields.

    Called after polars refused the file; returns quietly if nothing is found.
    """
    for number, raw in iter_lines(plain, first):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                shown, f"invalid UTF-8 at byte {exc.start} of the line; expected UTF-8 text",
                line=number,
            ) from None
        found = count_fields(text, sep, quote_char)
        if text.strip() and found > n_fields:
            raise DataFormatError(shown, f"expected {what}, found {found} fields", line=number)


def field_count_error(plain: Path, shown: Path, line: int, sep: str, n_fields: int, what: str):
    """The error for a line with missing fields or an empty required field."""
    text = read_line(plain, line)
    found = len(text.split(sep))
    if found != n_fields:
        return DataFormatError(shown, f"expected {what}, found {found} field(s)", line=line)
    return DataFormatError(shown, f"expected {what}, found an empty field", line=line)


def seconds_expr(column: str) -> pl.Expr:
    """Text or numbers to Int64 seconds: integers as they are, other numbers floored."""
    col = pl.col(column)
    as_float = col.cast(pl.Float64, strict=False)
    floored = pl.when(as_float.is_finite()).then(as_float.floor()).cast(pl.Int64, strict=False)
    return pl.coalesce(col.cast(pl.Int64, strict=False), floored)


def _drop_blank_rows(df: pl.DataFrame, fields: list[str]) -> pl.DataFrame:
    """Drop rows with no field, or only whitespace in the one field polars saw.

    Only the rows with at most one non-null field are inspected, so a clean file
    costs one cheap pass.
    """
    sparse = df.filter(pl.sum_horizontal(pl.col(c).is_not_null() for c in fields) <= 1)
    if sparse.height == 0:
        return df
    empty = pl.all_horizontal(
        pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "") for c in fields
    )
    blank = sparse.filter(empty)["row"]
    return df.filter(~pl.col("row").is_in(blank.implode())) if blank.len() else df


def _number(df: pl.DataFrame, column: str, dtype: pl.DataType) -> pl.Series:
    """``column`` as Float64 (ratings) or Int64 seconds (times); null where invalid.

    The direct cast serves clean files; only when it fails somewhere are surrounding
    spaces stripped and (for times) non-integer numbers floored.
    """
    source = df[column]
    direct = source.cast(dtype, strict=False)
    if direct.null_count() == source.null_count():
        return direct
    expr = pl.col(column)
    if source.dtype == pl.String:
        expr = expr.str.strip_chars()
    fixed = df.select(expr).select(
        seconds_expr(column) if dtype == pl.Int64 else pl.col(column).cast(dtype, strict=False)
    )
    return fixed.to_series()


def finalize(
    df: pl.DataFrame,
    shown: Path,
    *,
    line_offset: int | None,
    describe_missing=None,
    time_scale: int = 1,
) -> pl.DataFrame:
    """Validate and cast raw string columns to the readers' schema.

    ``df`` holds ``user``, ``item`` and optionally ``rating`` and ``time`` (strings or
    numbers) plus ``row`` (0-based row index in the file). Blank rows are dropped. The
    first row with a missing id or a value that is not a number raises a
    :class:`DataFormatError` naming line ``row + line_offset`` (or the row, where
    ``line_offset`` is ``None``, e.g. for Parquet). ``time_scale`` divides the time
    (1000 for milliseconds).

    Args:
        describe_missing: ``(line, column) -> DataFormatError`` for a missing id; the
            default says the value is missing.
    """
    fields = [c for c in ("user", "item", "rating", "time") if c in df.columns]
    df = _drop_blank_rows(df, fields)
    if df.height == 0:
        raise DataFormatError(shown, "no interactions found; expected at least one row")
    out = df.select(
        "row",
        pl.col("user").cast(pl.String),
        pl.col("item").cast(pl.String),
        rating=_number(df, "rating", pl.Float64()) if "rating" in fields
        else pl.lit(None, pl.Float64),
        time=_number(df, "time", pl.Int64()) if "time" in fields else pl.lit(None, pl.Int64),
    )
    problems = [
        (c, (pl.col(c).is_null() | (pl.col(c) == "")) if c in ("user", "item")
         else pl.col(c).is_null() | ~pl.col(c).cast(pl.Float64).is_finite())
        for c in fields
    ]
    bad = out.with_columns(
        _problem=pl.coalesce(pl.when(cond).then(pl.lit(c)) for c, cond in problems)
    ).filter(pl.col("_problem").is_not_null())
    if bad.height:
        row, column = int(bad["row"][0]), str(bad["_problem"][0])
        raw = df.filter(pl.col("row") == row)[column][0]
        where = {"line": row + line_offset} if line_offset is not None else {}
        prefix = "" if line_offset is not None else f"row {row + 1}: "
        if raw is None or (column in ("user", "item") and raw == ""):
            if describe_missing is not None and line_offset is not None:
                raise describe_missing(row + line_offset, column)
            raise DataFormatError(shown, f"{prefix}missing {column} value", column=column, **where)
        expected = "a number" if column == "rating" else "an integer Unix time in seconds"
        if column == "time" and time_scale != 1:
            expected = "an integer Unix time in milliseconds"
        raise DataFormatError(
            shown, f"{prefix}expected {expected}, found {raw!r}", column=column, **where
        )
    if time_scale != 1:
        out = out.with_columns(pl.col("time") // time_scale)
    return out.select(
        "user", "item", "rating", "time", order=pl.int_range(pl.len(), dtype=pl.Int64)
    )


def is_finite_number(value: object) -> bool:
    """True for an int or a finite float (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, float) or math.isfinite(value)


# A file is "integer ids" when at least this many of its ids are integers and the others
# are fewer than this share of them; one that is not an integer is then reported.
INTEGER_IDS_MIN = 5
STRAY_ID_SHARE = 0.1
_INTEGER = r"^[0-9]+$"


def check_integer_ids(lines: pl.DataFrame, path: Path) -> None:
    """Raise :class:`DataFormatError` (file, line, character column) at the first id that
    is not an integer in a ``sequences`` file whose ids are otherwise integers.

    ``lines`` has the columns ``line`` (1-based number), ``text`` and ``tokens`` (the
    whitespace-separated tokens: user first, then items). Users and items are judged
    apart: integer users with string items are fine.
    """
    tokens = lines.select("line", "tokens").with_columns(
        index=pl.int_ranges(0, pl.col("tokens").list.len())).explode("tokens", "index")
    roles = (("user", pl.col("index") == 0), ("item", pl.col("index") > 0))
    for role, rows in roles:
        ids = tokens.filter(rows)
        numeric = ids["tokens"].str.contains(_INTEGER)
        n_int, n_other = int(numeric.sum()), int((~numeric).sum())
        if n_other == 0 or n_int < INTEGER_IDS_MIN or n_other >= STRAY_ID_SHARE * ids.height:
            continue
        first = ids.filter(~numeric).row(0, named=True)
        text = lines.filter(pl.col("line") == first["line"])["text"][0]
        column = [m.start() for m in re.finditer(r"\S+", text)][first["index"]] + 1
        raise DataFormatError(
            path, f"{role} id {first['tokens']!r} is not an integer, while {n_int:,} of the "
            f"file's {ids.height:,} {role} ids are; a typo? Pass "
            f"--mixed-ids if ids may be strings", line=int(first["line"]), column=column)
