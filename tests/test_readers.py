"""Raw-format readers: the common schema on every format, and located bad-input errors."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from mgnm_pyg.data.readers import FORMATS, file_sha256, read_interactions
from mgnm_pyg.errors import DataFormatError

SCHEMA = {"user": pl.String, "item": pl.String, "rating": pl.Float64, "time": pl.Int64,
          "order": pl.Int64}


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def rows(df: pl.DataFrame) -> list[tuple]:
    assert dict(df.schema) == SCHEMA
    assert df["order"].to_list() == list(range(df.height))
    return [tuple(r) for r in df.select("user", "item", "rating", "time").iter_rows()]


def test_formats_registry_describes_every_format():
    assert set(FORMATS) == {"amazon2014-csv", "amazon2018-csv", "amazon-json", "sequences",
                            "recbole", "table"}
    for spec in FORMATS.values():
        assert spec.description and "\n" not in spec.description


def test_amazon2014_csv(tmp_path):
    path = write(tmp_path, "r.csv", "u1,i1,5.0,100\nu2,i1,2,200\r\n\nu1,i2,3.5,50\n")
    assert rows(read_interactions("amazon2014-csv", path)) == [
        ("u1", "i1", 5.0, 100), ("u2", "i1", 2.0, 200), ("u1", "i2", 3.5, 50)]


def test_spaces_around_numbers_and_float_times(tmp_path):
    path = write(tmp_path, "r.csv", "u1,i1, 4.5 ,1000.7\nu1,i2,3, 1e3\n   \nu2,i1,1,7\n")
    assert rows(read_interactions("amazon2014-csv", path)) == [
        ("u1", "i1", 4.5, 1000), ("u1", "i2", 3.0, 1000), ("u2", "i1", 1.0, 7)]


def test_amazon2018_csv_swaps_user_and_item(tmp_path):
    path = write(tmp_path, "r.csv", "i1,u1,5.0,100\ni2,u1,1.0,101\n")
    assert rows(read_interactions("amazon2018-csv", path)) == [
        ("u1", "i1", 5.0, 100), ("u1", "i2", 1.0, 101)]


def test_csv_keeps_duplicates(tmp_path):
    path = write(tmp_path, "r.csv", "u,i,5,1\nu,i,5,1\n")
    assert read_interactions("amazon2014-csv", path).height == 2


def test_gzip_csv_matches_plain(tmp_path):
    text = "u1,i1,5.0,100\nu2,i3,1.0,7\n"
    plain = read_interactions("amazon2014-csv", write(tmp_path, "a.csv", text))
    packed = read_interactions("amazon2014-csv", write(tmp_path, "b.csv.gz", gzip.compress(
        text.encode())))
    assert plain.equals(packed)


def test_amazon_json_2014_and_2023(tmp_path):
    old = [{"reviewerID": "A", "asin": "X", "overall": 5.0, "unixReviewTime": 10,
            "reviewText": "long text", "helpful": [0, 1]},
           {"reviewerID": "B", "asin": 7, "overall": 4, "unixReviewTime": 11}]
    path = write(tmp_path, "r.json.gz", gzip.compress(
        "\n".join(json.dumps(o) for o in old).encode()))
    assert rows(read_interactions("amazon-json", path)) == [
        ("A", "X", 5.0, 10), ("B", "7", 4.0, 11)]
    new = [{"user_id": "U", "asin": "child", "parent_asin": "P", "rating": 3.0,
            "timestamp": 1588687728923}]
    path = write(tmp_path, "n.jsonl", json.dumps(new[0]) + "\n")
    assert rows(read_interactions("amazon-json", path)) == [("U", "P", 3.0, 1588687728)]


def test_sequences_order_follows_line_then_position(tmp_path):
    path = write(tmp_path, "s.txt", "1 10 11 12\n\n2 11\r\n1  13\n")
    df = read_interactions("sequences", path)
    assert rows(df) == [("1", "10", None, None), ("1", "11", None, None),
                        ("1", "12", None, None), ("2", "11", None, None),
                        ("1", "13", None, None)]


def test_recbole_inter(tmp_path):
    path = write(tmp_path, "ml.inter", "user_id:token\titem_id:token\trating:float\t"
                 "timestamp:float\n1\t5\t4.0\t881250949.0\n2\t6\t3\t881250950\n")
    assert rows(read_interactions("recbole", path)) == [
        ("1", "5", 4.0, 881250949), ("2", "6", 3.0, 881250950)]
    path = write(tmp_path, "no_time.inter", "user_id:token\titem_id:token\nu\ti\n")
    assert rows(read_interactions("recbole", path)) == [("u", "i", None, None)]


def test_table_csv_tsv_parquet_agree(tmp_path):
    df = pl.DataFrame({"uid": [3, 4], "iid": ["a", "b"], "ts": [5, 6], "stars": [1.0, 2.5]})
    opts = {"user_col": "uid", "item_col": "iid", "time_col": "ts", "rating_col": "stars"}
    want = [("3", "a", 1.0, 5), ("4", "b", 2.5, 6)]
    df.write_csv(tmp_path / "t.csv")
    df.write_csv(tmp_path / "t.tsv", separator="\t")
    df.write_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.tsv", "t.parquet"):
        assert rows(read_interactions("table", tmp_path / name, **opts)) == want, name
    semi = write(tmp_path, "semi.txt", "uid;iid\nx;y\n")
    assert rows(read_interactions("table", semi, user_col="uid", item_col="iid", sep=";")) == [
        ("x", "y", None, None)]


def test_table_parquet_datetime_becomes_seconds(tmp_path):
    from datetime import datetime, timezone

    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    pl.DataFrame({"user": ["u"], "item": ["i"], "at": [when]}).write_parquet(tmp_path / "d.pq")
    df = read_interactions("table", tmp_path / "d.pq", time_col="at")
    assert df["time"].to_list() == [int(when.timestamp())]


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    path = write(tmp_path, "blob", data)
    assert file_sha256(path, chunk_size=1000) == hashlib.sha256(data).hexdigest()


# ---- bad input: every error names the file and says where and what was expected ----


def error(fmt: str, path: Path, **options) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_interactions(fmt, path, **options)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file(tmp_path):
    assert "file not found" in str(error("sequences", tmp_path / "nope.txt"))


def test_unknown_format_lists_known_ones(tmp_path):
    msg = str(error("csvv", write(tmp_path, "a.csv", "u,i,1,1\n")))
    assert "unknown format 'csvv'" in msg
    assert all(name in msg for name in FORMATS)


def test_option_for_wrong_format(tmp_path):
    msg = str(error("sequences", write(tmp_path, "s.txt", "1 2\n"), user_col="x"))
    assert "no option 'user_col'" in msg


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    for fmt in ("amazon2014-csv", "sequences", "amazon-json"):
        msg = str(error(fmt, write(tmp_path, f"e.{fmt}", text)))
        assert "empty" in msg or "no interactions" in msg or "blank" in msg


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [("u,i,1,1\nu,i,1,1,9\n", 2, "found 5 fields"),
     ("u,i,1,1\nu,i,1,1\nu,i\n", 3, "found 2 field(s)"),
     ("u,i\nu,i,1,1\n", 1, "found 2 field(s)")],
)
def test_wrong_number_of_columns(tmp_path, text, line, found):
    err = error("amazon2014-csv", write(tmp_path, "c.csv", text))
    assert err.line == line
    assert f"line {line}" in str(err) and "expected 4 comma-separated fields" in str(err)
    assert found in str(err)


def test_table_quoted_separator_is_not_an_extra_field(tmp_path):
    path = write(tmp_path, "t.csv", 'user,item\n"a,b",x\nc,d,e\n')
    err = error("table", path)
    assert err.line == 3 and "found 3 fields" in str(err)
    path = write(tmp_path, "ok.csv", 'user,item\n"a,b",x\n')
    assert rows(read_interactions("table", path)) == [("a,b", "x", None, None)]


def test_empty_field_is_named(tmp_path):
    err = error("amazon2014-csv", write(tmp_path, "c.csv", "u,i,1,1\nu,,1,1\n"))
    assert err.line == 2 and "empty field" in str(err)


@pytest.mark.parametrize(
    ("text", "column", "value", "expected"),
    [("u,i,5.0,10\n\nu,i,five,11\n", "rating", "'five'", "a number"),
     ("u,i,5.0,10\nu,i,4,2020-01-01\n", "time", "'2020-01-01'", "Unix time in seconds"),
     ("u,i,nan,10\n", "rating", "'nan'", "a number")],
)
def test_non_numeric_value(tmp_path, text, column, value, expected):
    err = error("amazon2014-csv", write(tmp_path, "c.csv", text))
    assert err.column == column and err.line == text.count("\n")
    assert value in str(err) and expected in str(err) and f"column {column!r}" in str(err)


def test_non_numeric_in_recbole_and_table_name_line(tmp_path):
    err = error("recbole", write(tmp_path, "x.inter",
                                 "user_id:token\titem_id:token\trating:float\nu\ti\t1\nu\ti\tx\n"))
    assert err.line == 3 and err.column == "rating"
    err = error("table", write(tmp_path, "t.csv", "user,item,t\na,b,1\na,b,soon\n"), time_col="t")
    assert err.line == 3 and "'soon'" in str(err)


def test_missing_named_column_lists_found(tmp_path):
    msg = str(error("table", write(tmp_path, "t.csv", "uid,item\n1,2\n")))
    assert "no user column named 'user'" in msg and "['uid', 'item']" in msg
    pl.DataFrame({"a": [1], "b": [2]}).write_parquet(tmp_path / "p.parquet")
    msg = str(error("table", tmp_path / "p.parquet", user_col="a"))
    assert "no item column named 'item'" in msg and "['a', 'b']" in msg
    msg = str(error("recbole", write(tmp_path, "r.inter", "uid:token\titem_id:token\n1\t2\n")))
    assert "user_id" in msg and "['uid', 'item_id']" in msg


def test_malformed_json_line(tmp_path):
    good = json.dumps({"reviewerID": "A", "asin": "X", "overall": 5.0, "unixReviewTime": 1})
    err = error("amazon-json", write(tmp_path, "r.json", f"{good}\n\n{good}\n{{broken\n"))
    assert err.line == 4 and "malformed JSON" in str(err)
    err = error("amazon-json", write(tmp_path, "r2.json", f'{good}\n[1, 2]\n'))
    assert err.line == 2 and "expected a JSON object" in str(err)
    missing = json.dumps({"reviewerID": "B", "asin": "Y", "unixReviewTime": 1})
    err = error("amazon-json", write(tmp_path, "r3.json", f"{good}\n\n{missing}\n"))
    assert err.line == 3 and err.column == "overall"
    err = error("amazon-json", write(tmp_path, "r4.json", '{"a": 1}\n'))
    assert "reviewerID" in str(err) and "['a']" in str(err)


def test_gzip_that_is_not_gzip(tmp_path):
    msg = str(error("amazon-json", write(tmp_path, "r.json.gz", "{}\n")))
    assert "not gzip-compressed" in msg
    truncated = gzip.compress(b"u,i,1,1\n" * 1000)[:40]
    msg = str(error("amazon2014-csv", write(tmp_path, "t.csv.gz", truncated)))
    assert "not a valid gzip file" in msg


def test_invalid_utf8_names_the_line(tmp_path):
    err = error("amazon2014-csv", write(tmp_path, "c.csv", b"u,i,1,1\n\xff\xfe,i,1,1\n"))
    assert err.line == 2 and "UTF-8" in str(err)
    err = error("sequences", write(tmp_path, "s.txt", b"1 2 3\n4 \xff\n"))
    assert err.line == 2 and "UTF-8" in str(err)


def test_sequence_line_without_items(tmp_path):
    err = error("sequences", write(tmp_path, "s.txt", "1 2 3\n\n7\n"))
    assert err.line == 3 and "at least one item" in str(err) and "'7'" in str(err)


def test_not_parquet(tmp_path):
    assert "Parquet" in str(error("table", write(tmp_path, "x.parquet", "user,item\n")))
