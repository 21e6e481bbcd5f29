"""Ranking agreement between users for finished runs, grouped by row (``<row>-seed<s>``).

Prints a markdown table: per row, the mean and std over seeds of
:func:`mgnm_pyg.insight.personalization.ranking_agreement` (test split, best checkpoint) beside
the run's sampled test HIT@5 from ``test_metrics.json``.

    python benchmarks/ranking_agreement.py runs/reproduce/table2/* runs/reproduce/table3/*
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from mgnm_pyg.insight.personalization import ranking_agreement
from mgnm_pyg.training.saved_run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--users", type=int, default=200, help="users per run (200)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    datasets: dict[tuple, object] = {}  # each dataset loaded once
    for run_dir in sorted(args.runs):
        metrics = run_dir / "test_metrics.json"
        if not metrics.exists():
            print(f"skipped (not finished): {run_dir}")
            continue
        hit = json.loads(metrics.read_text())["sampled"]["hit@5"]
        run = load_run(run_dir, device="cpu", datasets=datasets)
        agreement = ranking_agreement(run.model, run.dataset, "test", n_users=args.users,
                                      max_len=run.config.max_len, seed=run.config.seed)
        name = re.sub(r"-seed\d+$", "", run_dir.name)
        rows[f"{run_dir.parent.name}/{name}"].append((agreement, hit))
        print(f"{run_dir}: agreement {agreement:.3f}, HIT@5 {hit:.4f}", flush=True)
    print("\n| row | seeds | ranking agreement (mean ± std) | sampled test HIT@5 |")
    print("|---|---|---|---|")
    for name, values in rows.items():
        agree = [a for a, _ in values]
        spread = statistics.stdev(agree) if len(agree) > 1 else 0.0
        hit = statistics.mean(h for _, h in values)
        print(f"| {name} | {len(values)} | {statistics.mean(agree):.3f} ± {spread:.3f} "
              f"| {hit:.4f} |")


if __name__ == "__main__":
    main()
