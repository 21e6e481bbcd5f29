"""Fuzzing the text readers: any input gives a valid frame or a DataFormatError naming the file."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mgnm_pyg.data.readers import read_interactions
from mgnm_pyg.errors import DataFormatError

SCHEMA = {"user": pl.String, "item": pl.String, "rating": pl.Float64, "time": pl.Int64,
          "order": pl.Int64}
FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Characters that matter to the parsers, plus a little of everything else.
ALPHABET = st.sampled_from([*"ab12 ,.\t\n\r\"{}[]:-e", "nan", "\x00", "é", "\ufeff"])
TEXT = st.lists(ALPHABET, max_size=80).map("".join)
JSON_LINE = st.fixed_dictionaries(
    {"reviewerID": st.one_of(st.text(max_size=3), st.integers(), st.none()),
     "asin": st.one_of(st.text(min_size=1, max_size=3), st.booleans()),
     "overall": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=2)),
     "unixReviewTime": st.one_of(st.integers(-(2**40), 2**40), st.floats())},
).map(json.dumps)


def check(fmt: str, path, **options) -> pl.DataFrame | None:
    """Read ``path``; assert the outcome is a valid frame or a DataFormatError naming it."""
    try:
        df = read_interactions(fmt, path, **options)
    except DataFormatError as exc:
        assert str(path) in str(exc)
        return None
    assert dict(df.schema) == SCHEMA
    assert df.height > 0
    assert df["order"].to_list() == list(range(df.height))
    assert df["user"].null_count() == 0 and df["item"].null_count() == 0
    assert not (df["user"] == "").any() and not (df["item"] == "").any()
    return df


@pytest.mark.parametrize("fmt", ["amazon2014-csv", "amazon2018-csv", "sequences", "recbole",
                                 "amazon-json", "table"])
@FUZZ
@given(data=st.one_of(TEXT.map(str.encode), st.binary(max_size=60)), packed=st.booleans())
@example(data=b'\ra\n"', packed=False)  # once crashed the table reader's csv field count
def test_any_bytes_give_frame_or_located_error(tmp_path, fmt, data, packed):
    path = tmp_path / ("in.gz" if packed else "in.txt")
    path.write_bytes(gzip.compress(data) if packed else data)
    check(fmt, path)


@FUZZ
@given(lines=st.lists(st.one_of(JSON_LINE, TEXT), min_size=1, max_size=6))
def test_json_lines_fuzz(tmp_path, lines):
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(lines))
    check("amazon-json", path)


TOKEN = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=5)


@FUZZ
@given(records=st.lists(
    st.tuples(TOKEN, TOKEN, st.floats(0, 5, allow_nan=False).map(lambda x: round(x, 2)),
              st.integers(0, 2**40)), min_size=1, max_size=30))
def test_valid_csv_round_trips(tmp_path, records):
    path = tmp_path / "ratings.csv"
    path.write_text("".join(f"{u},{i},{r},{t}\n" for u, i, r, t in records))
    df = check("amazon2014-csv", path)
    assert df is not None
    assert [tuple(r) for r in df.select("user", "item", "rating", "time").iter_rows()] == records


@FUZZ
@given(users=st.lists(st.tuples(TOKEN, st.lists(TOKEN, min_size=1, max_size=8)), min_size=1,
                      max_size=10))
def test_valid_sequences_round_trip(tmp_path, users):
    path = tmp_path / "seq.txt"
    path.write_text("".join(f"{u} {' '.join(items)}\n" for u, items in users))
    df = check("sequences", path, mixed_ids=True)
    assert df is not None
    want = [(u, i) for u, items in users for i in items]
    assert [tuple(r) for r in df.select("user", "item").iter_rows()] == want
