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


def test_stop_epoch_replays_the_stopping_rule_on_a_runs_log(tmp_path):
    """The epoch after which a stopping rule ends a finished run, read off its
    ``metrics.jsonl``: patience counts epochs since the last strictly better value."""
    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.training.config import TrainConfig
    from mgnm_pyg.training.stopping import stop_epoch

    values = [0.10, 0.12, 0.12, 0.11, 0.13, 0.10, 0.09, 0.08]  # best at epochs 2 and 5
    (tmp_path / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "valid": {"ndcg@5": v}}) + "\n"
        for e, v in enumerate(values, start=1)))
    rule = lambda epochs, patience: TrainConfig(epochs=epochs, patience=patience)  # noqa: E731
    assert stop_epoch(tmp_path, rule(30, 2)) == 4  # epochs 3 and 4 are no better than 2
    assert stop_epoch(tmp_path, rule(30, 3)) == 8  # 6, 7, 8 after the best at 5
    assert stop_epoch(tmp_path, rule(3, 30)) == 3  # the epoch cap
    assert stop_epoch(tmp_path, rule(30, 4)) is None  # the rule would have gone on
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "valid": {}}\n')
    with pytest.raises(MGNMError, match=r"metrics.jsonl: epoch 1 has no validation ndcg@5"):
        stop_epoch(tmp_path, rule(30, 3))
