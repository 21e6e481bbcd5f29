"""Training failures end with a clear message and leave usable checkpoints behind."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner
from mgnm_pyg.cli import main

from mgnm_pyg.models import MGNM
from mgnm_pyg.training.checkpoint import load_checkpoint
from mgnm_pyg.training.trainer import Trainer

FAST = ["--data", "synthetic:tiny", "--dim", "8", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "10", "--batch-size", "256", "--eval-batch-size", "256",
        "--device", "cpu", "--no-progress", "--no-eval-full"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def failed(r, *needles: str) -> str:
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    for needle in needles:
        assert needle in r.output, r.output
    return r.output


def test_nan_loss_names_epoch_and_step_and_keeps_checkpoints(tmp_path, monkeypatch):
    where = {"epoch": 0, "step": 0}
    train_epoch, loss = Trainer.train_epoch, MGNM.loss

    def counting_epoch(self, epoch):
        where.update(epoch=epoch, step=0)
        return train_epoch(self, epoch)

    def nan_at_epoch_2_step_2(self, *args):
        where["step"] += 1
        total, parts = loss(self, *args)
        if (where["epoch"], where["step"]) == (2, 2):
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(Trainer, "train_epoch", counting_epoch)
    monkeypatch.setattr(MGNM, "loss", nan_at_epoch_2_step_2)
    out = tmp_path / "run"
    failed(invoke("train", *FAST, "--epochs", "3", "--out", out),
           "training loss is nan at epoch 2, step 2", "last.pt")
    for name in ("best.pt", "last.pt"):
        ck = load_checkpoint(out / "checkpoints" / name)
        assert ck["epoch"] == 1
        assert all(torch.isfinite(t).all() for t in ck["model"].values())
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    assert not (out / "test_metrics.json").exists()


def test_resume_refuses_to_change_the_run(tmp_path):
    out = tmp_path / "run"
    r = invoke("train", *FAST, "--epochs", "1", "--out", out)
    assert r.exit_code == 0, r.output
    failed(invoke("train", "--resume", out, "--dim", "4"), "cannot change dim")
    last = out / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:500])
    failed(invoke("train", "--resume", out), str(last), "not a readable checkpoint")
    last.unlink()
    failed(invoke("train", "--resume", out), "no completed epoch to resume from")


def test_bad_config_file_names_file_and_key(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('dim = 8\nlearning_rate = 0.1\n')
    failed(invoke("train", "--config", f, "--out", tmp_path / "r"), str(f),
           "unknown key 'learning_rate'")
    f.write_text('epochs = "many"\n')
    failed(invoke("train", "--config", f, "--out", tmp_path / "r"), "'epochs' expects int")
    assert not (tmp_path / "r").exists()


def test_config_file_is_used_and_command_line_wins(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('data = "synthetic:tiny"\ndim = 4\nn-layers = 1\nmax_len = 10\n'
                 'epochs = 1\neval_full = false\nn_interests = 3\n')
    out = tmp_path / "run"
    r = invoke("train", "--config", f, "--n-interests", "2", "--device", "cpu",
               "--no-progress", "--out", out)
    assert r.exit_code == 0, r.output
    config = json.loads((out / "config.json").read_text())
    assert (config["dim"], config["n_layers"], config["n_interests"]) == (4, 1, 2)
    assert "full" not in json.loads((out / "test_metrics.json").read_text())
