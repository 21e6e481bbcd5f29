"""Median MGNM training step (forward + backward + Adam) for the paper's configuration.

Rows: both conv paths at history lengths 10, 20 and 100 and on a Toys-like batch of
lengths, plus the authors' computation scheme (every history padded to 100 and
re-encoded once per candidate). Prints a markdown table ready for benchmarks/RESULTS.md.

    python benchmarks/model_step.py --repeats 20 --warmup 3 --threads 2
    python benchmarks/model_step.py --only-toys   # the two Toys-like rows, no reference row
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from mgnm_pyg.models import MGNM

BATCH, NEGATIVES, MAX_LEN = 256, 5, 100


def toys_like_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Lognormal lengths with mean about 8, clipped to [1, MAX_LEN]."""
    return np.clip(np.rint(rng.lognormal(mean=1.6, sigma=0.9, size=n)), 1, MAX_LEN).astype(int)


def make_batch(rng, lengths, n_users, n_items, width=None):
    """Left-aligned histories trimmed to the longest (or padded to ``width``)."""
    width = width or int(lengths.max())
    hist = np.zeros((len(lengths), width), dtype=np.int64)
    for row, n in enumerate(lengths):
        hist[row, :n] = rng.integers(1, n_items + 1, n)
    users = rng.integers(0, n_users, len(lengths))
    items = rng.integers(1, n_items + 1, (len(lengths), 1 + NEGATIVES))
    labels = np.zeros(items.shape, dtype=np.float32)
    labels[:, 0] = 1.0
    return [torch.from_numpy(a) for a in (users, hist, items, labels)]


def authors_batch(batch):
    """Every history padded to MAX_LEN and repeated once per candidate, one candidate each."""
    users, hist, items, labels = batch
    c = items.size(1)
    wide = torch.zeros(hist.size(0), MAX_LEN, dtype=hist.dtype)
    wide[:, : hist.size(1)] = hist
    return [
        users.repeat_interleave(c),
        wide.repeat_interleave(c, 0),
        items.reshape(-1, 1),
        labels.reshape(-1, 1),
    ]


def time_steps(model, batch, device, repeats, warmup):
    batch = [t.to(device) for t in batch]
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optim.zero_grad(set_to_none=True)
        loss, _ = model.loss(*batch)
        loss.backward()
        optim.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return statistics.median(times), q[2] - q[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n-users", type=int, default=60739, help="default: Musical Instr.")
    parser.add_argument("--n-items", type=int, default=56301, help="default: Musical Instr.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-toys", action="store_true",
                        help="time the Toys-like rows only (no speed-up column)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(args.seed)

    def model(conv):
        torch.manual_seed(args.seed)
        return MGNM(args.n_users, args.n_items, dim=16, n_interests=4, n_layers=3,
                    routing_iters=3, conv=conv).to(device)

    toys = make_batch(rng, toys_like_lengths(rng, BATCH), args.n_users, args.n_items)
    rows = []
    for name in () if args.only_toys else ("10", "20", "100"):
        batch = make_batch(rng, np.full(BATCH, int(name)), args.n_users, args.n_items)
        for conv in ("dense", "mp"):
            rows.append((f"length {name}", conv, *time_steps(model(conv), batch, device,
                                                             args.repeats, args.warmup)))
    for conv in ("dense", "mp"):
        rows.append((f"Toys-like (mean {toys[1].ne(0).sum(1).float().mean():.1f}, "
                     f"max {toys[1].size(1)})", conv,
                     *time_steps(model(conv), toys, device, args.repeats, args.warmup)))
    if args.only_toys:
        for name, conv, median, iqr in rows:
            print(f"| {name} | {conv} | {median:.1f} | {iqr:.1f} |")
        return
    # The authors' TF code runs every step of the width-100 batch; so does the fused LSTM.
    authors_model = model("dense")
    authors_model.extractors[0].bilstm.packed = False
    authors = time_steps(authors_model, authors_batch(toys), device, max(1, args.repeats // 3), 1)
    rows.append(("authors' scheme (Toys-like, pad 100, x6 re-encode)", "dense", *authors))

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}, "
          f"batch {BATCH}x(1+{NEGATIVES}), d=16 K=4 L=3 tau=3, "
          f"{args.n_users} users, {args.n_items} items\n")
    print("| batch | conv | median ms | IQR ms | speed-up vs authors' scheme |")
    print("|---|---|---|---|---|")
    for name, conv, median, iqr in rows:
        print(f"| {name} | {conv} | {median:.1f} | {iqr:.1f} | {authors[0] / median:.1f}x |")


if __name__ == "__main__":
    main()
