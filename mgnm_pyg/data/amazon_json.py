"""The reader of Amazon review JSON lines (the 2014, 2018 and 2023 releases).

Only the four kept keys are parsed, by polars' lazy JSON reader with the streaming
engine; a line polars cannot take is found again line by line, so the error names the
file, the line and the key (:class:`~mgnm_pyg.errors.DataFormatError`).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from mgnm_pyg.data import readers_checks as checks
from mgnm_pyg.errors import DataFormatError

__all__ = ["read_amazon_json"]


# JSON key sets of the Amazon review releases: (user, item, rating, time, time unit).
_JSON_KEYS = {
    "2014/2018": ("reviewerID", "asin", "overall", "unixReviewTime", 1),
    "2023": ("user_id", "parent_asin", "rating", "timestamp", 1000),
}


def _json_variant(path: Path, plain: Path) -> tuple[str, str, str, str, int]:
    """Pick the key set from the first non-blank line."""
    for number, raw in checks.iter_lines(plain):
        if not raw.strip():
            continue
        obj = _json_line(path, number, raw)
        for keys in _JSON_KEYS.values():
            if keys[0] in obj and keys[1] in obj:
                return keys
        raise DataFormatError(
            path, "expected Amazon review keys (reviewerID/asin/overall/unixReviewTime, or "
            f"user_id/parent_asin/rating/timestamp), found {sorted(obj)}", line=number,
        )
    raise DataFormatError(path, "the file holds only blank lines; expected JSON objects")


def _json_line(path: Path, number: int, raw: bytes) -> dict:
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DataFormatError(path, f"malformed JSON ({exc})", line=number) from None
    if not isinstance(obj, dict):
        raise DataFormatError(path, f"expected a JSON object, found {type(obj).__name__}",
                              line=number)
    return obj


def _json_first_bad(path: Path, plain: Path, keys: tuple[str, str, str, str, int]) -> None:
    """Raise for the first line polars could not take; returns if none is found."""
    user, item, rating, time, _ = keys
    for number, raw in checks.iter_lines(plain):
        if not raw.strip():
            continue
        obj = _json_line(path, number, raw)
        for key in (user, item):
            if not isinstance(obj.get(key), str | int) or isinstance(obj.get(key), bool):
                raise DataFormatError(path, f"expected a string id, found {obj.get(key)!r}",
                                      line=number, column=key)
        if not checks.is_finite_number(obj.get(rating)):
            raise DataFormatError(path, f"expected a number, found {obj.get(rating)!r}",
                                  line=number, column=rating)
        if not isinstance(obj.get(time), int) or isinstance(obj.get(time), bool):
            raise DataFormatError(path, f"expected an integer time, found {obj.get(time)!r}",
                                  line=number, column=time)


def read_amazon_json(path: Path, plain: Path) -> pl.DataFrame:
    keys = _json_variant(path, plain)
    user, item, rating, time, scale = keys
    schema = {user: pl.String, item: pl.String, rating: pl.Float64, time: pl.Int64}
    try:
        # only the four keys are parsed (the schema), streamed: memory follows them
        df = pl.scan_ndjson(plain, schema=schema).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        _json_first_bad(path, plain, keys)
        raise DataFormatError(path, f"could not be read as JSON lines: {exc}") from None
    df = df.rename({user: "user", item: "item", rating: "rating", time: "time"})
    if df.select(pl.any_horizontal(pl.all().is_null()).any()).item():
        _json_first_bad(path, plain, keys)  # names the line: polars drops blank lines
    return checks.finalize(df.with_row_index("row"), path, line_offset=None, time_scale=scale)
