"""The ``prepare`` and ``datasets`` commands, through click's CliRunner."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mgnm_pyg.cli import main


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output + "".join(
        traceback.format_exception(*result.exc_info))
    return result


@pytest.fixture
def ratings_csv(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """An Amazon 2014 CSV and the statistics expected after the rating > 2 filter."""
    rng = np.random.default_rng(0)
    lines, kept = [], []
    for u in range(40):
        for t in range(int(rng.integers(1, 9))):
            item, rating = f"i{rng.integers(0, 30)}", float(rng.integers(1, 6))
            lines.append(f"u{u},{item},{rating},{1000 + 10 * t + u}")
            if rating > 2:
                kept.append((f"u{u}", item))
    per_user: dict[str, int] = {}
    for user, _ in kept:
        per_user[user] = per_user.get(user, 0) + 1
    kept = [(u, i) for u, i in kept if per_user[u] >= 2]
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(lines) + "\n")
    expected = {"users": len({u for u, _ in kept}), "items": len({i for _, i in kept}),
                "interactions": len(kept), "rows_read": len(lines)}
    return path, expected


def test_help_exits_zero():
    for command in ("prepare", "datasets"):
        result = ok(command, "--help")
        assert "Usage" in result.output
    assert "amazon-json" in ok("prepare", "--help").output


def test_prepare_writes_folder_and_reuses_cache(tmp_path, ratings_csv):
    path, expected = ratings_csv
    root = tmp_path / "data"
    args = ("prepare", "amazon2014-csv", path, "--data-dir", root, "--eval-negatives", 5,
            "--split", "global-time")
    first = ok(*args)
    assert "Prepared dataset 'ratings'" in first.output
    folder = root / "ratings"
    card = json.loads((folder / "card.json").read_text())
    assert {k: card["statistics"][k] for k in expected} == expected
    assert card["options"]["split"] == "global-time"
    assert card["source"]["format"] == "amazon2014-csv"
    records = expected["interactions"] - expected["users"]  # every item after the first
    assert card["statistics"]["records"] == records
    dropped = card["statistics"]["eval_records_dropped_no_train"]
    assert sum(card["splits"].values()) + dropped == records
    assert f"{expected['users']:,}" in first.output and "train" in first.output
    before = (folder / "card.json").stat().st_mtime_ns

    second = ok(*args)
    assert "Reused the cached dataset" in second.output
    assert (folder / "card.json").stat().st_mtime_ns == before

    assert "Prepared dataset" in ok(*args, "--force").output
    assert "Prepared dataset" in ok(*args, "--seed", 1).output  # other options: no reuse

    listing = ok("datasets", "--data-dir", root).output
    assert "ratings" in listing and f"{expected['interactions']:,}" in listing
    assert "global-time" in listing and "ratings.csv (amazon2014-csv)" in listing


def test_prepare_uses_env_data_dir_and_name(tmp_path, ratings_csv, monkeypatch):
    path, _ = ratings_csv
    monkeypatch.setenv("MGNM_DATA_DIR", str(tmp_path / "env"))
    ok("prepare", "amazon2014-csv", path, "--name", "mi", "--eval-negatives", 3)
    assert (tmp_path / "env" / "mi" / "card.json").is_file()
    assert "mi" in ok("datasets").output


def test_table_columns_are_part_of_the_cache_key(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("who,what,t1,t2\n" + "".join(
        f"u{u},i{(u + k) % 7},{k},{10 - k}\n" for u in range(6) for k in range(4)))
    base = ("prepare", "table", path, "--data-dir", tmp_path, "--user-col", "who",
            "--item-col", "what", "--eval-negatives", 2, "--split", "global-time")
    ok(*base, "--time-col", "t1")
    assert "Prepared" in ok(*base, "--time-col", "t2").output
    assert "Reused" in ok(*base, "--time-col", "t2").output
    source = json.loads((tmp_path / "log" / "card.json").read_text())["source"]
    assert source["format"] == "table"
    assert source["reader_options"] == {"user_col": "who", "item_col": "what", "time_col": "t2"}


def test_datasets_says_when_there_are_none(tmp_path):
    assert "No prepared datasets" in ok("datasets", "--data-dir", tmp_path / "empty").output


@pytest.mark.parametrize(
    ("content", "needle"),
    [("u,i,5,1\nu,i,5\n", "line 2: expected 4 comma-separated fields"),
     ("u,i,5,1\nu,i,great,2\n", "line 2, column 'rating': expected a number, found 'great'"),
     ("", "empty")],
)
def test_bad_input_is_a_clean_error(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = invoke("prepare", "amazon2014-csv", path, "--data-dir", tmp_path)
    assert result.exit_code == 1
    assert needle in result.output and str(path) in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_missing_file_and_usage_errors(tmp_path):
    result = invoke("prepare", "sequences", tmp_path / "nope.txt")
    assert result.exit_code == 1 and "file not found" in result.output
    result = invoke("prepare", "csv", tmp_path / "x.csv")
    assert result.exit_code == 2 and "amazon2014-csv" in result.output
    (tmp_path / "s.txt").write_text("1 2 3\n")
    result = invoke("prepare", "sequences", tmp_path / "s.txt", "--user-col", "u")
    assert result.exit_code == 2 and "only apply to the table format" in result.output
    result = invoke("prepare", "sequences", tmp_path / "s.txt", "--name", "../evil")
    assert result.exit_code == 2 and "--name" in result.output


def test_datasets_lists_a_damaged_card_without_failing(tmp_path, ratings_csv):
    path, _ = ratings_csv
    ok("prepare", "amazon2014-csv", path, "--data-dir", tmp_path, "--eval-negatives", 2)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "card.json").write_text("{not json")
    listing = ok("datasets", "--data-dir", tmp_path).output
    assert "broken" in listing and "unreadable card.json" in listing
    assert "ratings" in listing


def test_candidates_option_chooses_the_stored_or_generated_form(tmp_path, ratings_csv):
    from mgnm_pyg.data.store import load_dataset

    path, _ = ratings_csv
    base = ("prepare", "amazon2014-csv", path, "--eval-negatives", 5, "--name")
    assert "--candidates [auto|stored|generated]" in ok("prepare", "--help").output
    auto = ok(*base, "a", "--data-dir", tmp_path)
    assert "evaluation candidates: stored" in auto.output  # small: stored
    gen = ok(*base, "g", "--data-dir", tmp_path, "--candidates", "generated")
    assert "evaluation candidates: generated" in gen.output
    assert (tmp_path / "a" / "candidates_test.parquet").is_file()
    assert not list((tmp_path / "g").glob("candidates_*.parquet"))
    stored, generated = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "g")
    rows = np.arange(len(stored.records["test"]))
    assert np.array_equal(stored.candidates["test"],
                          generated.evaluation_candidates("test", rows))
    bad = invoke(*base, "b", "--data-dir", tmp_path, "--candidates", "lazy")
    assert bad.exit_code == 2 and "'lazy' is not one of" in bad.output
