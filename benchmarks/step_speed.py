"""A Toys training epoch and full-ranking test evaluation, this checkout against another.

Each checkout runs in its own worker process (``PYTHONPATH`` set to its root), which
loads the data and builds the model once; the parent then asks the workers in turn, in
alternating order, to time one pass, so both see the same load on a shared machine.
Prints the medians, their ratio (this checkout / baseline) and the metrics each
evaluation gave (equal up to float noise when the model is the same function).

Training: ``--batches`` of the epoch's length-bucketed batches, stratified by width
(every k-th batch in order of width), each a full step (forward, backward, Adam) at
the ``TrainConfig()`` defaults; the epoch is their mean times the iterations per
epoch (the few widest batches are rarely picked, so this underestimates the epoch;
``--batches 0`` times the whole epoch). Evaluation: ``evaluate_split(...,
protocol="full")`` on the test records of a seeded random share of the users
(``--eval-users``; 1.0 is the whole split), scaled to the split by records.

    git worktree add --detach /tmp/base17 e739159
    MGNM_DATA_DIR=datasets python benchmarks/step_speed.py --baseline /tmp/base17
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def worker(args: argparse.Namespace) -> None:
    """Answer ``train``/``eval`` lines on stdin with one JSON line each."""
    import copy
    import time

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from mgnm_pyg.data.collate import dense_batch
    from mgnm_pyg.data.negatives import sample_training_negatives
    from mgnm_pyg.data.sampler import LengthBucketSampler
    from mgnm_pyg.training.build import build_model, load_data
    from mgnm_pyg.training.config import TrainConfig
    from mgnm_pyg.training.distributed import DistributedLoss
    from mgnm_pyg.training.evaluation import evaluate_split
    from mgnm_pyg.training.step import train_step

    cfg = TrainConfig(data=args.data, device="cpu")
    data = load_data(cfg)
    device = torch.device("cpu")
    records = data.records["train"]
    lengths = data.history_lengths(records, cfg.max_len)
    sampler = LengthBucketSampler(lengths, cfg.batch_size, shuffle=True, seed=cfg.seed)
    sampler.set_epoch(1)
    batches = sampler.batches()
    by_width = sorted(batches, key=lambda b: int(lengths[b].max()))
    if args.batches:
        step = max(1, len(batches) // args.batches)
        picked = by_width[step // 2 :: step][: args.batches]
    else:  # the whole epoch, in its own order
        picked = batches
    negatives = sample_training_negatives(data, records, cfg.negatives,
                                          np.random.default_rng([cfg.seed, 1]))
    dense = [(dense_batch(data, records, b, cfg.max_len), negatives[b]) for b in picked]

    test = data.records["test"]
    users = np.unique(test.users)
    keep = np.random.default_rng(0).random(users.size) < args.eval_users
    subset = copy.copy(data)
    subset.records = dict(data.records)
    subset.records["test"] = test.subset(np.isin(test.users, users[keep]))

    def train_pass() -> dict:
        model = build_model(cfg, data)
        loss_fn = DistributedLoss(model)
        optim = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        train_step(loss_fn, optim, *dense[-1], cfg, device)  # one-off allocations
        start = time.perf_counter()
        for batch, neg in dense:
            train_step(loss_fn, optim, batch, neg, cfg, device)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "epoch_seconds": seconds / len(dense) * len(batches)}

    def eval_pass() -> dict:
        model = build_model(cfg, data)
        torch.manual_seed(cfg.seed)
        start = time.perf_counter()
        out = evaluate_split(model, subset, "test", protocol="full", ks=(5, 10, 20),
                             batch_size=cfg.eval_batch_size, max_len=cfg.max_len,
                             progress=False)
        seconds = time.perf_counter() - start
        share = len(subset.records["test"]) / len(test)
        return {"seconds": seconds, "split_seconds": seconds / share,
                "metrics": {k: float(v) for k, v in out.items()}}

    import mgnm_pyg

    info = {"package": mgnm_pyg.__file__, "iterations_per_epoch": len(batches),
            "batches_timed": len(dense),
            "widths": [int(lengths[b].max()) for b in picked] if args.batches else "all",
            "eval_records": len(subset.records["test"]), "test_records": len(test)}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        result = train_pass() if line.strip() == "train" else eval_pass()
        print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True,
                        help="root of the checkout to compare with (a git worktree)")
    parser.add_argument("--data", default="toys")
    parser.add_argument("--batches", type=int, default=20,
                        help="training batches timed (0: the whole epoch)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed training passes per checkout (0: none)")
    parser.add_argument("--eval-users", type=float, default=0.2,
                        help="share of the test users evaluated (1.0: all)")
    parser.add_argument("--eval-rounds", type=int, default=3,
                        help="timed evaluation passes per checkout (0: none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    forwarded = ["--data", args.data, "--batches", str(args.batches), "--eval-users",
                 str(args.eval_users), "--threads", str(args.threads), "--baseline", "-"]
    procs = {}
    for name, root in (("baseline", args.baseline.resolve()), ("this", HERE)):
        env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS=str(args.threads))
        procs[name] = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", *forwarded],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)
    info = {name: json.loads(p.stdout.readline()) for name, p in procs.items()}
    for name in ("baseline", "this"):
        print(name, json.dumps(info[name]))

    def ask(name: str, what: str) -> dict:
        procs[name].stdin.write(what + "\n")
        procs[name].stdin.flush()
        return json.loads(procs[name].stdout.readline())

    results = {}
    for what, rounds in (("train", args.rounds), ("eval", args.eval_rounds)):
        got = {"baseline": [], "this": []}
        for r in range(rounds):
            for name in ("baseline", "this") if r % 2 == 0 else ("this", "baseline"):
                got[name].append(ask(name, what))
        results[what] = got
    for p in procs.values():
        p.stdin.close()
        p.wait()

    print(f"threads {args.threads}; {args.rounds} training and {args.eval_rounds} evaluation "
          "passes per checkout, alternating")
    for what, key, label in (("train", "epoch_seconds", "training epoch (estimated)"),
                             ("eval", "split_seconds", "full-ranking test split")):
        if not results[what]["this"]:
            continue
        med = {n: statistics.median(x[key] for x in results[what][n]) for n in results[what]}
        print(f"{label}: baseline {med['baseline']:.1f} s, this {med['this']:.1f} s, "
              f"ratio {med['this'] / med['baseline']:.3f}")
        for name in ("baseline", "this"):
            print(f"  {name} passes:", " ".join(f"{x[key]:.1f}" for x in results[what][name]))
    for name in ("baseline", "this") if args.eval_rounds else ():
        print(name, "metrics", json.dumps(results["eval"][name][0]["metrics"]))


if __name__ == "__main__":
    main()
