"""Resume and determinism: an interrupted and resumed run equals an uninterrupted one."""

from __future__ import annotations

import json

import pytest
import torch
from cli_helpers import invoke, ok

from mgnm_pyg.training.trainer import Trainer

FAST = ["--data", "synthetic:tiny", "--dim", "8", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "10", "--batch-size", "256", "--eval-batch-size", "256",
        "--device", "cpu", "--no-progress", "--no-eval-full", "--patience", "5"]


def history(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        del row["timing"]  # wall times are the one thing allowed to differ
    return rows


def assert_same_checkpoint(a, b):
    ca = torch.load(a, weights_only=True)
    cb = torch.load(b, weights_only=True)
    assert ca["epoch"] == cb["epoch"]
    assert ca["model"].keys() == cb["model"].keys()
    for name in ca["model"]:
        assert torch.equal(ca["model"][name], cb["model"][name]), name
    sa, sb = ca["optimizer"]["state"], cb["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for key in sa[i]:
            assert torch.equal(sa[i][key], sb[i][key]), (i, key)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    ok(invoke("train", *FAST, "--epochs", "2", "--out", out))
    return out


def test_interrupted_then_resumed_equals_uninterrupted(straight_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    original = Trainer.train_epoch

    def interrupt_at_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupt_at_epoch_2)
    r = invoke("train", *FAST, "--epochs", "2", "--out", out)
    assert r.exit_code == 130, r.output
    assert "interrupted during epoch 2" in r.output
    assert f"mgnm-pyg train --resume {out}" in r.output
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert len(history(out)) == 1
    assert not (out / "test_metrics.json").exists()

    monkeypatch.setattr(Trainer, "train_epoch", original)
    assert "resuming" in ok(invoke("train", "--resume", out, "--no-progress"))
    assert history(out) == history(straight_run)
    assert json.loads((out / "test_metrics.json").read_text()) == json.loads(
        (straight_run / "test_metrics.json").read_text())
    for name in ("last.pt", "best.pt"):
        assert_same_checkpoint(out / "checkpoints" / name, straight_run / "checkpoints" / name)


def test_resuming_a_finished_run_only_retests(straight_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(straight_run, copy)
    (copy / "test_metrics.json").unlink()
    ok(invoke("train", "--resume", copy, "--no-progress"))
    assert history(copy) == history(straight_run)
    assert (copy / "test_metrics.json").read_text() == (
        straight_run / "test_metrics.json").read_text()


def test_same_seed_same_results_other_seed_differs(straight_run, tmp_path):
    ok(invoke("train", *FAST, "--epochs", "1", "--out", tmp_path / "again"))
    assert history(tmp_path / "again")[0] == history(straight_run)[0]
    ok(invoke("train", *FAST, "--epochs", "1", "--seed", "1", "--out", tmp_path / "seed1"))
    other = history(tmp_path / "seed1")[0]
    assert other["train_loss"] != history(straight_run)[0]["train_loss"]
    a = torch.load(tmp_path / "again" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "seed1" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert not torch.equal(a["item_embedding.weight"], b["item_embedding.weight"])
