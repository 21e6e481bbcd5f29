"""Several processes (gloo, CPU): sharded evaluation and DDP training match one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner
from mgnm_pyg.cli import main

from mgnm_pyg.data.store import resolve_dataset
from mgnm_pyg.models import MGNM
from mgnm_pyg.training import distributed
from mgnm_pyg.training.config import TrainConfig
from mgnm_pyg.training.evaluation import evaluate_split
from mgnm_pyg.training.trainer import Trainer

WORLD = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(dataset) -> MGNM:
    torch.manual_seed(0)
    return MGNM(dataset.n_users, dataset.n_items, dim=8, n_interests=2, n_layers=1)


def evaluate_both(dataset, model) -> dict[str, dict[str, float]]:
    # small batches, so that the shards hold several user groups each
    return {p: evaluate_split(model, dataset, "test", p, ks=(1, 5), batch_size=16,
                              max_len=10, progress=False, per_user_best=True)
            for p in ("sampled", "full")}


FAST_CONFIG = {"data": "synthetic:tiny", "dim": 8, "n_interests": 2, "n_layers": 1,
               "max_len": 10, "batch_size": 64, "eval_batch_size": 64, "device": "cpu"}


def _worker(rank: int, port: int, out: str) -> None:
    """Sharded evaluation, then the first epoch of a DDP run (resumed by torchrun below)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    dataset = resolve_dataset("synthetic:tiny")
    result = evaluate_both(dataset, tiny_model(dataset))
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    config = TrainConfig(**FAST_CONFIG, epochs=1)
    Trainer(config, Path(out, "ddp"), progress=False, echo=lambda _: None).fit()  # tears down


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread here too: with the spawned ranks on a 2-core machine, more threads
    oversubscribe the cores and every step waits on spinning threads.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spawned(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spawned")
    mp.spawn(_worker, args=(free_port(), str(out)), nprocs=WORLD, join=True)
    return out


def test_sharded_evaluation_equals_single_process(spawned):
    dataset = resolve_dataset("synthetic:tiny")
    single = evaluate_both(dataset, tiny_model(dataset))
    for rank in range(WORLD):
        shard = json.loads((spawned / f"rank{rank}.json").read_text())
        for protocol, metrics in single.items():
            # counts are exact; metrics are the same sums in float64
            assert shard[protocol]["n_records"] == metrics["n_records"]
            assert shard[protocol]["n_users_gauc"] == metrics["n_users_gauc"]
            assert shard[protocol]["per_user_best_n_users"] == metrics["per_user_best_n_users"]
            assert shard[protocol] == pytest.approx(metrics, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- torchrun end to end
FAST = ["--data", "synthetic:tiny", "--dim", "8", "--n-interests", "2", "--n-layers", "1",
        "--max-len", "10", "--batch-size", "64", "--eval-batch-size", "64", "--device", "cpu",
        "--no-progress"]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def torchrun(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(TORCHRUN), "--nproc_per_node", str(WORLD), "--master_port",
                        str(free_port()), "-m", "mgnm_pyg.cli", "train", *FAST, *args],
                       capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def read_run(run_dir: Path) -> tuple[list[dict], dict, list[str]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    return rows, json.loads((run_dir / "test_metrics.json").read_text()), files


@pytest.fixture(scope="module")
def runs(spawned, tmp_path_factory):
    """Two epochs on 2 processes (the second resumed by torchrun), and in one process."""
    output = torchrun("--resume", str(spawned / "ddp"), "--epochs", "2")
    one = tmp_path_factory.mktemp("single") / "one"
    r = CliRunner().invoke(main, ["train", *FAST, "--epochs", "2", "--out", str(one)])
    assert r.exit_code == 0, r.output
    return read_run(spawned / "ddp"), read_run(one), output


def test_only_rank_zero_prints_and_writes(runs):
    (_, _, ddp_files), (_, _, one_files), output = runs
    assert ddp_files == one_files  # one set of files, as a single process writes them
    assert not any(name.endswith(".tmp") or "rank" in name for name in ddp_files)
    assert output.count("epoch  train_loss") == 1  # printed by rank 0 only
    assert output.count("test metrics of the best epoch") == 1


def test_resumed_ddp_run_matches_single_process(runs):
    """Same global batches and negatives, so only float summation order differs (the
    2-way gradient all-reduce vs one sum over the batch): train losses agree to 1e-5
    relative; a metric may move only if a record's positive and a negative score within
    that noise of each other, so metrics may differ by at most one record's share.
    """
    (ddp_rows, ddp_test, _), (one_rows, one_test, _), _ = runs
    assert [r["epoch"] for r in ddp_rows] == [r["epoch"] for r in one_rows] == [1, 2]
    for ddp, one in zip(ddp_rows, one_rows, strict=True):
        assert ddp["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
        assert ddp["train_parts"] == pytest.approx(one["train_parts"], rel=1e-5)
        assert ddp["valid"]["n_records"] == one["valid"]["n_records"]
        one_record = 1 / one["valid"]["n_records"]
        assert ddp["valid"] == pytest.approx(one["valid"], abs=one_record)
    assert ddp_test["best_epoch"] == one_test["best_epoch"]
    for protocol in ("sampled", "full"):
        one_record = 1 / one_test[protocol]["n_records"]
        assert ddp_test[protocol] == pytest.approx(one_test[protocol], abs=one_record)
