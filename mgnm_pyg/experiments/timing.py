"""Training and evaluation cost per dataset, in the columns of the paper's Table 4.

Table 4 reports seconds per iteration, iterations per epoch and minutes per epoch of
the authors' TensorFlow 1.14 code on one GPU. Iterations per epoch follow from the
data alone (``ceil(train records / batch size)``), so a benchmark times a fixed number
of iterations on batches drawn from the log instead of training a whole epoch.

One training iteration is what :class:`~mgnm_pyg.training.trainer.Trainer` does per
batch, :func:`~mgnm_pyg.training.step.train_step` (the device copy, forward, backward and
an Adam step) on ``batch_size`` positives, each with ``negatives`` fresh training
negatives. The trainer's batches are length-bucketed, so
their cost varies a lot with their length; the timed batches are therefore a
stratified sample of epoch 1's batches sorted by width (:func:`timed_batches`), so that
their lengths follow the epoch's. The seconds-per-iteration column is their median (as asked
for Table 4); the minutes per epoch use their mean, which estimates the epoch's sum.

Evaluation is timed on the test split: sampled (1000 negatives per record, SPEC) and
full ranking, both with :func:`~mgnm_pyg.training.evaluation.evaluate_split`. A subset
of whole users (``eval_records``) may be timed and the split's time extrapolated
linearly in records; the output says so.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.experiments.measure import device_name, peak_rss_mb, reset_peak_rss, sync
from mgnm_pyg.training.config import TrainConfig

# Table 4 of the paper (TensorFlow 1.14, one GPU): s/iter, iterations/epoch, min/epoch.
PAPER_TABLE4: dict[str, tuple[float, int, float]] = {
    "micro-video": (0.3825, 15311, 97.60),
    "toys": (0.1843, 13202, 40.55),
    "musical-instruments": (0.0598, 2373, 2.37),
}
EVAL_NEGATIVES = 1000  # SPEC: sampled evaluation ranks each positive among 1000 negatives


@dataclass
class BenchOptions:
    """What to measure; the model settings are :class:`TrainConfig`'s (SPEC) defaults."""

    convs: tuple[str, ...] = ("dense", "mp")
    iters: int = 20
    warmup: int = 20  # untimed; cycles through the timed batches (see timed_batches)
    eval: bool = True
    eval_records: int | None = None  # None: the whole test split
    eval_batch_size: int = 512
    seed: int = 0
    config: TrainConfig = field(default_factory=TrainConfig)


def paper_row(spec: str) -> str | None:
    """The Table 4 row a dataset spec stands for (by name), or None."""
    name = spec.rpartition(":")[2].rstrip("/").rpartition("/")[2].lower()
    aliases = {"mi": "musical-instruments", "musical_instruments": "musical-instruments",
               "toys_and_games": "toys", "micro_video": "micro-video"}
    name = aliases.get(name, name)
    return name if name in PAPER_TABLE4 else None


def paper_dim(spec: str) -> int:
    """SPEC: d = 40 on Micro-video, 16 on the Amazon data."""
    return 40 if paper_row(spec) == "micro-video" else 16


def load_bench_dataset(spec: str, max_len: int, seed: int):
    """A dataset by spec; synthetic presets skip their persisted candidates (the benchmark
    draws its own 1000 per timed record, which at paper scale would not fit in memory).
    """
    from mgnm_pyg.data.store import resolve_dataset
    from mgnm_pyg.data.synthetic import synthetic_dataset

    if spec == "synthetic" or spec.startswith("synthetic:"):
        preset = spec.partition(":")[2] or "demo"
        return synthetic_dataset(preset, seed=seed, max_len=max_len, n_eval_negatives=1)
    return resolve_dataset(spec, max_len=max_len, seed=seed)


def timed_batches(sampler, iters: int, warmup: int, seed: int) -> list[np.ndarray]:
    """``warmup`` untimed batches, then ``iters`` timed ones in random order: the sampler's
    batches sorted by width are cut into ``iters`` equal strata and the middle batch of
    each is timed (stratified sampling), so the timed mean estimates the epoch's mean
    without over-weighting the rare longest batches; a split with fewer batches than
    ``iters`` repeats some.

    The warm-up cycles through the timed batches: the first batch of each width pays
    one-off costs (the CPU kernels' per-shape set-up, CUDA allocations) that a training
    run pays once per width, not every epoch; ``warmup >= iters`` excludes them all.
    """
    lengths = sampler.lengths
    by_width = sorted(sampler.batches(), key=lambda b: (int(lengths[b].max()), int(b.min())))
    spread = ((np.arange(iters) + 0.5) * len(by_width) / iters).astype(int)
    timed = [by_width[i] for i in np.random.default_rng([seed, 3]).permutation(spread)]
    return [timed[i % iters] for i in range(warmup)] + timed


def time_training(dataset, conv: str, dim: int, opts: BenchOptions,
                  device: torch.device) -> tuple[dict[str, Any], torch.nn.Module]:
    """Median/mean seconds of training iterations (warm-up excluded), peak memory, and
    the model after those iterations.
    """
    from mgnm_pyg.data.collate import dense_batch
    from mgnm_pyg.data.negatives import sample_training_negatives
    from mgnm_pyg.data.sampler import LengthBucketSampler
    from mgnm_pyg.training.acceleration import compile_encode
    from mgnm_pyg.training.build import build_model
    from mgnm_pyg.training.distributed import DistributedLoss
    from mgnm_pyg.training.step import train_step

    cfg = opts.config.replace(conv=conv, dim=dim, seed=opts.seed)
    records = dataset.records["train"]
    sampler = LengthBucketSampler(dataset.history_lengths(records, cfg.max_len),
                                  cfg.batch_size, shuffle=True, seed=opts.seed)
    sampler.set_epoch(1)
    batches = timed_batches(sampler, opts.iters, opts.warmup, opts.seed)
    model = build_model(cfg, dataset).to(device)
    if cfg.compile:  # compiled during the warm-up, which cycles through the timed shapes
        compile_encode(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = DistributedLoss(model)
    rng = np.random.default_rng([opts.seed, 1])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    peak_reset = reset_peak_rss()
    times, mean_lengths, widths = [], [], []
    model.train()
    for step, index in enumerate(batches):
        # sampling and collation sit outside the timed region, as a DataLoader worker would
        # do them; the step is timed as the trainer runs it, its device copy included
        negatives = sample_training_negatives(dataset, records.subset(index), cfg.negatives, rng)
        batch = dense_batch(dataset, records, index, cfg.max_len)
        sync(device)
        start = time.perf_counter()
        train_step(loss_fn, optimizer, batch, negatives, cfg, device)
        sync(device)
        if step >= opts.warmup:
            times.append(time.perf_counter() - start)
            mean_lengths.append(float((batch["histories"] != 0).sum(1).float().mean()))
            widths.append(int(batch["histories"].shape[1]))
    iters_per_epoch = len(sampler)
    median, mean = statistics.median(times), statistics.fmean(times)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    out = {
        "seconds_per_iteration": median,
        "seconds_per_iteration_mean": mean,
        "seconds_per_iteration_iqr": q[2] - q[0],
        "iterations_timed": len(times),
        "mean_history_length_timed": statistics.fmean(mean_lengths),
        "minutes_per_epoch": mean * iters_per_epoch / 60,
        "minutes_per_epoch_from_median": median * iters_per_epoch / 60,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_since": "this measurement" if peak_reset else "process start",
        "timed": [{"width": w, "seconds": t} for w, t in zip(widths, times, strict=True)],
    }
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / (1 << 20)
    return out, model


def _users_subset(records, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the records of randomly chosen whole users, about ``n`` of them in all
    (GAUC pools a user's rows, so a user is timed with all of its records or none).
    """
    users = np.unique(records.users)
    order = rng.permutation(users)
    counts = np.bincount(records.users)[order]
    keep = order[: int(np.searchsorted(np.cumsum(counts), n)) + 1]
    return np.flatnonzero(np.isin(records.users, keep))


def eval_dataset(dataset, eval_records: int | None, seed: int):
    """A shallow copy whose test split is the timed records, with 1000 negatives each."""
    from mgnm_pyg.data.candidates import record_candidates

    records = dataset.records["test"]
    if len(records) == 0:
        raise MGNMError(f"dataset {dataset.name!r} has no test records to time")
    rng = np.random.default_rng([seed, 2])
    index = np.arange(len(records))
    if eval_records is not None and eval_records < len(records):
        index = _users_subset(records, eval_records, rng)
    timed = copy.copy(dataset)
    timed.records = {**dataset.records, "test": records.subset(index)}
    if dataset.candidate_width("test") == EVAL_NEGATIVES and "test" not in dataset.candidates:
        # generated candidates: computed per batch as the timed evaluation runs, as in a
        # real one (the subset's own record ids: other candidates, the same cost)
        return timed, len(records)
    if dataset.candidate_width("test") == EVAL_NEGATIVES:
        drawn = dataset.candidates["test"][index]
    else:
        # the dataset's own definition of candidates, at the width the bench times
        drawn = record_candidates(dataset.interaction_keys, dataset.n_items, seed, "test",
                                  index, records.users[index], EVAL_NEGATIVES)
    timed.candidates = {**dataset.candidates, "test": drawn}
    return timed, len(records)


def time_evaluation(model, dataset, opts: BenchOptions, device: torch.device) -> dict:
    """Seconds of a sampled and a full-ranking evaluation of the test split."""
    from mgnm_pyg.training.evaluation import evaluate_split

    timed, total = eval_dataset(dataset, opts.eval_records, opts.seed)
    n = len(timed.records["test"])
    out = {}
    for protocol in ("sampled", "full"):
        sync(device)
        start = time.perf_counter()
        evaluate_split(model, timed, "test", protocol, ks=(5,), batch_size=opts.eval_batch_size,
                       max_len=opts.config.max_len, device=device, progress=False)
        sync(device)
        seconds = time.perf_counter() - start
        out[protocol] = {
            "records_timed": n, "records_total": total, "extrapolated": n < total,
            "negatives": EVAL_NEGATIVES if protocol == "sampled" else "all items",
            "seconds": seconds, "seconds_split": seconds * total / n,
        }
    return out


def bench_dataset(spec: str, opts: BenchOptions, device: torch.device,
                  echo=print) -> dict[str, Any]:
    """Every measurement of one dataset (see the module docstring)."""
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    dataset = load_bench_dataset(spec, opts.config.max_len, opts.seed)
    load_seconds, load_peak = time.perf_counter() - start, peak_rss_mb()
    n_train = len(dataset.records["train"])
    dim = paper_dim(spec)
    row = paper_row(spec)
    result: dict[str, Any] = {
        "dataset": spec, "name": dataset.name, "paper_row": row,
        "n_users": dataset.n_users, "n_items": dataset.n_items,
        "n_interactions": dataset.n_interactions, "train_records": n_train,
        "test_records": len(dataset.records["test"]), "dim": dim,
        "batch_size": opts.config.batch_size,
        "iterations_per_epoch": math.ceil(n_train / opts.config.batch_size),
        "load_seconds": load_seconds, "load_peak_rss_mb": load_peak,
        "load_peak_rss_since": "this load" if peak_reset else "process start", "train": {},
    }
    if row is not None:
        s, it, mins = PAPER_TABLE4[row]
        result["paper"] = {"seconds_per_iteration": s, "iterations_per_epoch": it,
                           "minutes_per_epoch": mins}
    echo(f"{spec}: {dataset.n_users} users, {dataset.n_items} items, {n_train} training "
         f"records ({result['iterations_per_epoch']} iterations/epoch), d={dim}")
    model = None
    for conv in opts.convs:
        result["train"][conv], trained = time_training(dataset, conv, dim, opts, device)
        model = trained if model is None else model
        echo(f"  train {conv}: {result['train'][conv]['seconds_per_iteration']:.4f} s/iter")
    if opts.eval and model is not None:
        result["eval_conv"] = opts.convs[0]
        result["eval"] = time_evaluation(model, dataset, opts, device)
        for protocol, e in result["eval"].items():
            echo(f"  eval {protocol}: {e['seconds']:.2f} s for {e['records_timed']} records")
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_benchmark(specs: list[str], opts: BenchOptions, device: torch.device,
                  echo=print) -> dict[str, Any]:
    """The benchmark report: environment, settings, the paper's Table 4 and one row per dataset."""
    if opts.iters < 1 or opts.warmup < 0:
        raise MGNMError(f"--iters must be >= 1 and --warmup >= 0, got {opts.iters}, "
                        f"{opts.warmup}")
    cfg = opts.config
    return {
        "device": {"type": device.type, "name": device_name(device),
                   "threads": torch.get_num_threads(), "torch": torch.__version__},
        "settings": {"n_interests": cfg.n_interests, "n_layers": cfg.n_layers,
                     "routing_iters": cfg.routing_iters, "max_len": cfg.max_len,
                     "batch_size": cfg.batch_size, "negatives": cfg.negatives,
                     "iters": opts.iters, "warmup": opts.warmup, "seed": opts.seed,
                     "eval_negatives": EVAL_NEGATIVES, "eval_batch_size": opts.eval_batch_size,
                     "amp": cfg.amp, "compile": cfg.compile},
        "paper_table4": {k: dict(zip(("seconds_per_iteration", "iterations_per_epoch",
                                      "minutes_per_epoch"), v, strict=True))
                         for k, v in PAPER_TABLE4.items()},
        "results": [bench_dataset(spec, opts, device, echo) for spec in specs],
    }

