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
from mgnm_pyg.data.store import resolve_dataset
from mgnm_pyg.models import MGNM
from mgnm_pyg.training import distributed
from mgnm_pyg.training.evaluation import evaluate_split

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


def _eval_worker(rank: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    try:
        dataset = resolve_dataset("synthetic:tiny")
        result = evaluate_both(dataset, tiny_model(dataset))
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        distributed.teardown()


def test_sharded_evaluation_equals_single_process(tmp_path):
    mp.spawn(_eval_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    dataset = resolve_dataset("synthetic:tiny")
    single = evaluate_both(dataset, tiny_model(dataset))
    for rank in range(WORLD):
        shard = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for protocol, metrics in single.items():
            # counts are exact; metrics are the same sums in float64
            assert shard[protocol]["n_records"] == metrics["n_records"]
            assert shard[protocol]["n_users_gauc"] == metrics["n_users_gauc"]
            assert shard[protocol]["per_user_best_n_users"] == metrics["per_user_best_n_users"]
            assert shard[protocol] == pytest.approx(metrics, rel=1e-12, abs=1e-12)
