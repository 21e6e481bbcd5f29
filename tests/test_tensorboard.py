"""`train --tensorboard DIR` mirrors metrics.jsonl into TensorBoard event files."""

from __future__ import annotations

import json
import sys

import pytest
from cli_helpers import failed, invoke, ok

FAST = ["--data", "synthetic:tiny", "--dim", "4", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "5", "--device", "cpu", "--no-eval-full", "--ranking-agreement", "0",
        "--no-progress"]


def test_without_the_package_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    failed(invoke("train", *FAST, "--epochs", "1", "--out", tmp_path / "run",
                  "--tensorboard", tmp_path / "tb"),
           "the tensorboard package is not installed", "mgnm-pyg[tensorboard]")


def test_every_epoch_row_is_logged(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ok(invoke("train", *FAST, "--epochs", "2", "--patience", "5", "--lr", "0.002",
              "--out", tmp_path / "run", "--tensorboard", tmp_path / "tb"))
    rows = [json.loads(line) for line in
            (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/bce_level0", "valid/ndcg@5", "valid/gauc", "optim/lr",
            "time/seconds"} <= tags

    def series(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    assert series("train/loss") == [(r["epoch"], pytest.approx(r["train_loss"])) for r in rows]
    for name in rows[0]["valid"]:
        assert series(f"valid/{name}") == [(r["epoch"], pytest.approx(r["valid"][name]))
                                           for r in rows]
    assert series("optim/lr") == [(1, pytest.approx(0.002)), (2, pytest.approx(0.002))]
