"""A damaged checkpoint gives every command our own one-line message: the file, what is
wrong, what to do; never torch's text, nor its advice to load with weights_only=False."""

from __future__ import annotations

import fractions
import os
import shutil

import pytest
import torch
from cli_helpers import invoke, ok

FAST = ["--data", "synthetic:tiny", "--dim", "4", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "5", "--device", "cpu", "--no-progress", "--no-eval-full"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    ok(invoke("train", *FAST, "--epochs", "1", "--out", out))
    return out


def _truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path):
    path.write_bytes(os.urandom(4096))


def _empty(path):
    path.write_bytes(b"")


def _foreign_objects(path):
    torch.save({"format": "mgnm-pyg-checkpoint", "x": fractions.Fraction(1, 3)}, path)


DAMAGE = {
    "truncated": (_truncated, "the archive is truncated or corrupted"),
    "random": (_random_bytes, "not a file written by torch.save"),
    "empty": (_empty, "the file is empty"),
    "foreign": (_foreign_objects, "holds objects other than tensors"),
}
COMMANDS = {
    "evaluate": ("best.pt", lambda run: ["evaluate", run, "--device", "cpu"]),
    "recommend": ("best.pt", lambda run: ["recommend", run, "--user", "u0001"]),
    "visualize": ("best.pt", lambda run: ["visualize", "adjacency", run, "--user", "u0001"]),
    "resume": ("last.pt", lambda run: ["train", "--resume", run, "--no-progress"]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_damaged_checkpoint_gives_one_line_of_our_own(trained, tmp_path, damage, command):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    name, args = COMMANDS[command]
    path = run / "checkpoints" / name
    spoil, reason = DAMAGE[damage]
    spoil(path)
    r = invoke(*args(run))
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    lines = r.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: {path}: not a readable "
                                                       f"checkpoint: "), r.output
    assert reason in lines[0]
    assert lines[0].endswith("restore it from a copy, or train the run again")
    assert "weights_only" not in r.output and "Traceback" not in r.output
