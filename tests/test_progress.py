"""Progress bars: on stderr when asked or on a terminal, quiet when piped or --no-progress."""

from __future__ import annotations

import pytest
from cli_helpers import TINY_ONE_EPOCH as FAST
from cli_helpers import invoke, ok


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    r = invoke("train", *FAST, "--out", out)  # CliRunner's stderr is not a terminal
    ok(r)
    assert "epoch 1/1" not in r.stderr and "batch" not in r.stderr
    return out


def test_train_shows_its_bar_only_when_asked(tmp_path, run):
    r = invoke("train", *FAST, "--progress", "--out", tmp_path / "r")
    ok(r)
    assert "epoch 1/1" in r.stderr


@pytest.mark.parametrize(("flag", "shown"), [(None, False), ("--progress", True),
                                              ("--no-progress", False)])
def test_evaluate_bar(run, flag, shown):
    args = ["evaluate", run, "--device", "cpu", "--ranking-agreement", "100"]
    r = invoke(*args, *([flag] if flag else []))
    ok(r)
    for bar in ("test (sampled)", "ranking agreement (test)"):
        assert (bar in r.stderr) is shown, r.stderr
        assert bar not in r.stdout


@pytest.mark.parametrize(("flag", "shown"), [(None, False), ("--progress", True)])
def test_visualize_compare_bar(run, tmp_path, flag, shown):
    r = invoke("visualize", "compare", run, "--device", "cpu", "--out", tmp_path / "c.png",
               *([flag] if flag else []))
    ok(r)
    assert ("test (sampled)" in r.stderr) is shown, r.stderr
