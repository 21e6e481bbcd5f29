"""A `sequences` file of integer ids with one id that is not: a located error, unless
--mixed-ids."""

from __future__ import annotations

import pytest
from cli_helpers import failed, invoke, ok

from mgnm_pyg.data.readers import read_interactions
from mgnm_pyg.errors import DataFormatError

ISSUE = "1 10 11 12\n2 13 14 15\n3 16 abc 17\n4 18 19 20\n"


def test_a_stray_item_id_is_located(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(ISSUE)
    with pytest.raises(DataFormatError) as err:
        read_interactions("sequences", path)
    assert (err.value.line, err.value.column) == (3, 6)
    assert str(err.value).startswith(f"{path}, line 3, column 6: item id 'abc' is not an "
                                     f"integer, while 11 of the file's 12 item ids are")
    assert "--mixed-ids" in str(err.value)


def test_a_stray_user_id_is_located(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("".join(f"{u} a b\n" for u in ("1", "2", "3", "4", "5", "x6", "7", "8",
                                                    "9", "10", "11")))
    with pytest.raises(DataFormatError, match=r"line 6, column 1: user id 'x6'"):
        read_interactions("sequences", path)


@pytest.mark.parametrize("text", [
    "u1 a b c\nu2 d e f\n",                          # string ids
    "1 10 11 12\n2 13 14 15\n3 16 abc 17 x y\n",     # 3 of 11 items are strings: mixed
    "1 1 2\n2 3 x\n",                                # too few integers to judge
    "a 1 2 3\nb 4 5 6\nc 7 8 9\n",                  # string users with integer items
])
def test_files_that_are_not_integer_ids_pass(tmp_path, text):
    path = tmp_path / "s.txt"
    path.write_text(text)
    assert read_interactions("sequences", path).height > 0


def test_mixed_ids_accepts_the_stray_id(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(ISSUE)
    df = read_interactions("sequences", path, mixed_ids=True)
    assert df.filter(df["user"] == "3")["item"].to_list() == ["16", "abc", "17"]


def test_prepare_reports_it_and_takes_mixed_ids(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(ISSUE)
    failed(invoke("prepare", "sequences", path, "--data-dir", tmp_path / "ds"),
           f"{path}, line 3, column 6: item id 'abc' is not an integer")
    ok(invoke("prepare", "sequences", path, "--data-dir", tmp_path / "ds", "--mixed-ids"))
    r = invoke("prepare", "amazon2014-csv", path, "--mixed-ids")
    assert r.exit_code == 2 and "--mixed-ids only apply to the sequences format" in r.output
