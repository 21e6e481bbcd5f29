"""`recommend --all-users --out FILE.parquet`: every user's top-K, as the one-user form."""

from __future__ import annotations

import polars as pl
import pytest
from cli_helpers import TINY_ONE_EPOCH as FAST
from cli_helpers import invoke, ok


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    ok(invoke("train", *FAST, "--out", out))
    return out


def test_every_user_gets_the_one_user_answer(run_dir, tmp_path):
    from mgnm_pyg.inference.recommend import recommend
    from mgnm_pyg.training.saved_run import load_run

    out = tmp_path / "recs.parquet"
    r = invoke("recommend", run_dir, "--all-users", "--k", "7", "--batch-size", "64",
               "--out", out, "--progress")
    text = ok(r)
    assert "recommend" in r.stderr  # the bar
    frame = pl.read_parquet(out)
    run = load_run(run_dir, device="cpu")
    data = run.dataset
    assert frame.columns == ["user", "user_id", "rank", "item", "item_id", "score"]
    assert frame.height == 7 * data.n_users and f"wrote {frame.height:,}" in text
    assert frame.group_by("user").agg(pl.col("rank").sort())["rank"].to_list() == \
        [list(range(1, 8))] * data.n_users
    assert not list(tmp_path.glob(".*.tmp"))
    for user in range(data.n_users):
        rows = frame.filter(pl.col("user") == user).sort("rank")
        assert set(rows["item"].to_list()).isdisjoint(data.sequence(user).tolist())
        assert rows["user_id"].to_list() == [str(data.user_ids[user])] * 7
        assert rows["item_id"].to_list() == [str(data.item_ids[i]) for i in rows["item"]]
        assert rows["score"].to_list() == sorted(rows["score"].to_list(), reverse=True)
    for user in (0, 17, data.n_users - 1):
        one = recommend(run, str(data.user_ids[user]), k=7)
        rows = frame.filter(pl.col("user") == user).sort("rank")
        assert rows["item_id"].to_list() == one.items
        assert rows["score"].to_list() == pytest.approx(one.scores, abs=1e-5)


def test_a_failure_leaves_the_old_file(run_dir, tmp_path, monkeypatch):
    from mgnm_pyg.inference import recommend_all

    out = tmp_path / "recs.parquet"
    out.write_bytes(b"old")
    calls = []

    def broken(run, users, k):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return real(run, users, k)

    real = recommend_all._top_k
    monkeypatch.setattr(recommend_all, "_top_k", broken)
    r = invoke("recommend", run_dir, "--all-users", "--batch-size", "32", "--out", out)
    assert r.exit_code != 0 and isinstance(r.exception, RuntimeError)
    assert out.read_bytes() == b"old" and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("args", "message"), [
    ([], "give --user RAW_ID, or --all-users"),
    (["--all-users"], "--all-users needs --out"),
    (["--all-users", "--user", "u0001", "--out", "x.parquet"], "--all-users excludes"),
    (["--user", "u0001", "--out", "x.parquet"], "--out only applies with --all-users"),
])
def test_usage_errors(run_dir, args, message):
    r = invoke("recommend", run_dir, *args)
    assert r.exit_code == 2 and message in r.output
