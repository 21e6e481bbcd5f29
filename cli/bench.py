"""``mgnm-pyg bench``: the paper's Table 4 (training cost per epoch) and evaluation cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from mgnm_pyg.cli.options import config_option, user_errors

QUICK_DATASETS = ("synthetic:tiny",)
DEFAULT_DATASETS = ("synthetic:musical-instruments",)


@click.command("bench")
@click.option("--datasets", "datasets", multiple=True, metavar="SPEC",
              help="Dataset specs (repeat, or space-separated): a prepared NAME such as "
                   "toys, a PATH, or synthetic:PRESET (musical-instruments, toys, "
                   "micro-video are Table 1's scales). Default: synthetic:musical-instruments "
                   "(synthetic:tiny with --quick).")
@config_option("device")
@config_option("conv", multiple=True, default=(), show_default=False,
               help="Graph convolution paths to time (repeatable). Default: dense and mp.")
@click.option("--iters", type=int, default=None, help="Timed iterations [default: 20; 3 quick].")
@click.option("--warmup", type=int, default=None,
              help="Untimed warm-up iterations, cycling through the batches to be timed so "
                   "that one-off per-shape costs are excluded [default: --iters].")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
@click.option("--eval-records", type=int, default=None, metavar="N",
              help="Time evaluation on about N test records (whole users) and extrapolate "
                   "to the split [default: all; 60 quick].")
@click.option("--eval/--no-eval", "do_eval", default=True, show_default=True,
              help="Also time sampled (1000 negatives) and full-ranking evaluation.")
@config_option("amp", negatable=False,
               help="bf16 autocast of the timed forward passes (for GPUs), as train --amp.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the encoder, as train --compile; compilation falls in the "
                   "warm-up (give --warmup >= --iters).")
@config_option("seed", help="Seed of the model initialisation, negatives and timed batches.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.json", help="Write the report as JSON.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.md", help="Write the markdown tables.")
@click.option("--quick", is_flag=True, help="Tiny sizes, for tests and a smoke check.")
@user_errors
def bench(datasets: tuple[str, ...], device: str, conv: tuple[str, ...], iters: int | None,
          warmup: int | None, threads: int | None, eval_records: int | None, do_eval: bool,
          amp: bool, compile_: bool, seed: int, out: Path | None, markdown: Path | None,
          quick: bool) -> None:
    """Time training iterations (Table 4's columns) and evaluation, at SPEC's settings.

    d is 40 for micro-video and 16 otherwise; everything else is the training defaults
    (K=4, L=3, tau=3, batch 256 x (1+5), Adam). Prints the markdown tables with the
    paper's Table 4 numbers beside ours.
    """
    import torch

    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.experiments.timing import BenchOptions, run_benchmark
    from mgnm_pyg.files import atomic_write_json, atomic_write_text
    from mgnm_pyg.training.build import resolve_device
    from mgnm_pyg.training.config import TrainConfig

    specs = [s for arg in datasets for s in arg.split()] or list(
        QUICK_DATASETS if quick else DEFAULT_DATASETS)
    if threads is not None:
        if threads < 1:
            raise MGNMError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    if eval_records is not None and eval_records < 1:
        raise MGNMError(f"--eval-records must be >= 1, got {eval_records}")
    n_iters = iters if iters is not None else (3 if quick else 20)
    opts = BenchOptions(
        convs=conv or BenchOptions.convs,
        iters=n_iters,
        warmup=warmup if warmup is not None else n_iters,
        eval=do_eval,
        eval_records=eval_records if eval_records is not None else (60 if quick else None),
        seed=seed,
        config=TrainConfig(amp=amp, compile=compile_),
    )
    report = run_benchmark(specs, opts, resolve_device(device), echo=click.echo)
    table = format_markdown(report)
    click.echo("\n" + table)
    if out is not None:
        atomic_write_json(out, report)
        click.echo(f"wrote {out}")
    if markdown is not None:
        atomic_write_text(markdown, table)
        click.echo(f"wrote {markdown}")


def _runtime_flags(settings: dict[str, Any]) -> str:
    flags = [name for name in ("amp", "compile") if settings.get(name)]
    return f" ({', '.join(flags)})" if flags else ""


def _f(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_markdown(report: dict[str, Any]) -> str:
    """Two markdown tables (training as in Table 4, then evaluation) with a header line."""
    dev, st = report["device"], report["settings"]
    lines = [
        f"Device: {dev['name']} ({dev['type']}, {dev['threads']} threads, torch "
        f"{dev['torch']}). K={st['n_interests']} L={st['n_layers']} "
        f"tau={st['routing_iters']} max_len={st['max_len']}, batch {st['batch_size']} x "
        f"(1+{st['negatives']}), {st['iters']} timed iterations after {st['warmup']} "
        f"warm-up{_runtime_flags(st)}. Paper: TensorFlow 1.14 on one GPU (Table 4).",
        "",
        "| dataset | d | conv | s/iter (median) | iters/epoch | min/epoch | peak memory MB "
        "| paper s/iter | paper iters/epoch | paper min/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        paper = r.get("paper", {})
        for conv, t in r["train"].items():
            memory = t.get("peak_cuda_mb", t["peak_rss_mb"])
            lines.append(
                f"| {r['dataset']} | {r['dim']} | {conv} | {t['seconds_per_iteration']:.4f} "
                f"| {r['iterations_per_epoch']:,} | {t['minutes_per_epoch']:.2f} "
                f"| {memory:,.0f} | {_f(paper.get('seconds_per_iteration'), 4)} "
                f"| {_f(paper.get('iterations_per_epoch'), 0)} "
                f"| {_f(paper.get('minutes_per_epoch'), 2)} |")
    lines += ["", "Minutes per epoch = mean s/iter x iterations per epoch (batch lengths vary, "
              "so the mean, not the median, estimates the epoch); peak memory is CUDA "
              "max_memory_allocated on a GPU, else the process's peak RSS during the "
              "measurement (data and model included).", ""]
    evals = [r for r in report["results"] if "eval" in r]
    if evals:
        lines += ["| dataset | protocol | conv | records timed | seconds | seconds for the "
                  "whole test split |", "|---|---|---|---|---|---|"]
        for r in evals:
            for protocol, e in r["eval"].items():
                whole = f"{e['seconds_split']:.1f}" + (" (extrapolated)" if e["extrapolated"]
                                                       else "")
                lines.append(f"| {r['dataset']} | {protocol} | {r['eval_conv']} "
                             f"| {e['records_timed']:,} of {e['records_total']:,} "
                             f"| {e['seconds']:.2f} | {whole} |")
        lines += ["", f"Sampled: {st['eval_negatives']} negatives per record; full: every item "
                  "but the user's history. Extrapolated rows time whole users drawn at "
                  "random and scale linearly in records.", ""]
    loads = [r for r in report["results"] if "load_peak_rss_mb" in r]  # older reports: none
    if not loads:
        return "\n".join(lines)
    lines += ["| dataset | interactions | load s | load peak memory MB |", "|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['n_interactions']:,} | {r['load_seconds']:.1f} "
              f"| {r['load_peak_rss_mb']:,.0f} |" for r in loads]
    lines += ["", "Load: reading a prepared dataset, or generating and preparing a synthetic "
              "one; its peak is the process's peak resident memory during the load.", ""]
    return "\n".join(lines)
