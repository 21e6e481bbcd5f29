"""Time and peak memory of `mgnm-pyg prepare` on Toys and on a log of Micro-video size.

Each measurement runs in a fresh subprocess that does what `prepare` does (hash the
file, read it, filter/index/split/draw candidates, write the folder) and reports the
seconds of each phase and its own peak resident memory (``ru_maxrss``; polars and
numpy allocate outside Python's heap, so tracemalloc would miss most of it).

Cases:

* ``toys``: ``Toys_and_Games.txt`` (S3Rec sequences, 167,597 interactions); target < 10 s.
* ``micro-video``: a synthetic log at the scale of the paper's Table 1 Micro-video row
  (60,813 users, 292,286 items, 14,952,659 interactions), written first as an Amazon
  2014 CSV in a temporary folder, so reading the text counts; target < 3 min, < 4 GB.
  Writing the file is not timed, but its generation is measured too (seconds and peak
  memory of that subprocess), and the peak compared with the target is the larger of
  the two processes'.

    python benchmarks/data_prep.py --cases toys --repeats 3
    python benchmarks/data_prep.py --cases micro-video --split per-user

``--candidates`` is passed to the preparation (``auto``: large candidate sets are
generated per batch at evaluation time, only their seed is stored).

Prints a markdown table with the command, the machine and the date. The process CPU
time (user + system, imports included) helps read wall times taken on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MGNM_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
TARGETS = {"toys": (10.0, None), "micro-video": (180.0, 4.0)}  # seconds, GB


def peak_gb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def write_synthetic(path: Path, seed: int) -> dict:
    """Write the Micro-video-sized synthetic log as ``user,item,rating,timestamp``;
    returns the rows, the generation's seconds and this process's peak memory."""
    import polars as pl

    from mgnm_pyg.data.synthetic import PRESETS, generate_interactions

    preset = {k: v for k, v in PRESETS["micro-video"].items() if k != "n_eval_negatives"}
    start = time.perf_counter()
    frame, _ = generate_interactions(seed=seed, **preset)
    seconds = time.perf_counter() - start
    # Every rating 5.0: the filter still runs over every row but keeps the full scale.
    frame.select("user", "item", rating=pl.lit(5.0), time="time").write_csv(
        path, include_header=False)
    return {"rows": frame.height, "generate_s": seconds, "peak_gb": peak_gb()}


def run_case(fmt: str, path: Path, options: dict) -> dict:
    """One measured preparation (in the subprocess); returns phase seconds and peak memory."""
    import numpy as np

    from mgnm_pyg.data.prepare import prepare_interactions
    from mgnm_pyg.data.readers import file_sha256, read_interactions
    from mgnm_pyg.data.store import save_dataset

    seconds = {}

    def timed(phase: str, func, *args, **kwargs):
        start = time.perf_counter()
        result = func(*args, **kwargs)
        seconds[phase] = time.perf_counter() - start
        print(f"  {phase}: {seconds[phase]:.2f} s, peak {peak_gb():.2f} GB", file=sys.stderr)
        return result

    sha = timed("hash", file_sha256, path)
    frame = timed("read", read_interactions, fmt, path)
    source = {"path": str(path), "format": fmt, "sha256": sha}
    dataset = timed("prepare", prepare_interactions, frame, name="bench", source=source,
                    **options)
    with tempfile.TemporaryDirectory(prefix="mgnm-bench-") as out:
        timed("save", save_dataset, dataset, Path(out) / "bench")
    peak = peak_gb()  # of the preparation, before the timing below builds lookup keys
    # what sampled evaluation pays per batch when the candidates are generated (a stored
    # form reads them instead): candidates of 256-record batches, 4096 records in all
    rows = np.arange(min(4096, len(dataset.records["test"])))
    _ = dataset.interaction_keys  # built once per dataset (cached), not per batch
    start = time.perf_counter()
    for lo in range(0, rows.size, 256):
        dataset.evaluation_candidates("test", rows[lo:lo + 256])
    per_1k = (time.perf_counter() - start) / max(rows.size, 1) * 1000
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "peak_gb": peak, "cpu_s": usage.ru_utime + usage.ru_stime,
            "rows": frame.height, "interactions": dataset.n_interactions,
            "users": dataset.n_users, "items": dataset.n_items,
            "candidates": dataset.card["candidates"]["form"], "candidates_s_per_1k": per_1k}


def in_subprocess(*args: str) -> dict:
    """Run this script with ``args`` in a fresh interpreter; parse its last output line."""
    proc = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"subprocess {args} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    import numpy
    import polars

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except OSError:
        mem = float("nan")
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GB RAM; Python {platform.python_version()}"
            f", polars {polars.__version__}, numpy {numpy.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="toys", help="comma list of: toys, micro-video")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--split", default=None,
                        help="split for every case [default: per-user for toys, "
                        "leave-one-out for micro-video]")
    parser.add_argument("--eval-negatives", type=int, default=1000)
    parser.add_argument("--candidates", default="auto", choices=["auto", "stored", "generated"],
                        help="form of the evaluation candidates [default: auto]")
    parser.add_argument("--toys-path", type=Path, default=SHARED / "Toys_and_Games.txt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--_case", nargs=3, metavar=("FMT", "PATH", "OPTIONS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--_write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._write is not None:
        print(json.dumps(write_synthetic(args._write, args.seed)))
        return
    if args._case is not None:
        fmt, path, options = args._case
        print(json.dumps(run_case(fmt, Path(path), json.loads(options))))
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="mgnm-bench-data-") as tmp:
        for case in args.cases.split(","):
            split = args.split or ("leave-one-out" if case == "micro-video" else "per-user")
            options = {"split": split, "n_eval_negatives": args.eval_negatives,
                       "seed": args.seed, "candidates": args.candidates}
            generated = None
            if case == "toys":
                fmt, path = "sequences", args.toys_path
                if not path.is_file():
                    raise SystemExit(f"{path} not found (set --toys-path)")
            elif case == "micro-video":
                fmt, path = "amazon2014-csv", Path(tmp) / "micro_video.csv"
                start = time.perf_counter()
                generated = in_subprocess("--_write", str(path), "--seed", str(args.seed))
                print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in "
                      f"{time.perf_counter() - start:.0f} s: {generated}", file=sys.stderr)
            else:
                raise SystemExit(f"unknown case {case!r}; choose toys, micro-video")
            runs = []
            for i in range(args.repeats):
                runs.append(in_subprocess("--_case", fmt, str(path), json.dumps(options)))
                print(f"{case} run {i + 1}: {runs[-1]}", file=sys.stderr)
            rows.append((case, split, runs, generated))

    print(f"Command: `python benchmarks/data_prep.py {' '.join(sys.argv[1:])}`  ")
    print(f"Machine: {machine()}  ")
    print(f"Date: {datetime.date.today().isoformat()}; median of {args.repeats} run(s), "
          f"{args.eval_negatives} evaluation negatives, candidates {args.candidates}; "
          "generate: the synthetic log's generation (its own process; writing the CSV not "
          "timed); peak GB: the larger of the generation's and the preparation's peak; "
          "cand. s/1k: seconds to get the test candidates of 1000 records in batches of 256 "
          "(computed when generated, indexed when stored)\n")
    print("| case | split | interactions | candidates | generate s (peak GB) | hash s | read s "
          "| prepare s | save s | total s | process CPU s | peak GB | cand. s/1k | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case, split, runs, generated in rows:
        phases = {k: statistics.median(r["seconds"][k] for r in runs)
                  for k in ("hash", "read", "prepare", "save")}
        total = statistics.median(sum(r["seconds"].values()) for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        peak = max([r["peak_gb"] for r in runs] + ([generated["peak_gb"]] if generated else []))
        gen = (f"{generated['generate_s']:.1f} ({generated['peak_gb']:.2f})" if generated
               else "-")
        limit_s, limit_gb = TARGETS[case]
        met = total < limit_s and (limit_gb is None or peak < limit_gb)
        target = f"< {limit_s:.0f} s" + (f", < {limit_gb:.0f} GB" if limit_gb else "")
        print(f"| {case} | {split} | {runs[0]['interactions']:,} | {runs[0]['candidates']} | "
              f"{gen} | {phases['hash']:.2f} | "
              f"{phases['read']:.2f} | {phases['prepare']:.2f} | {phases['save']:.2f} | "
              f"{total:.2f} | {cpu:.1f} | {peak:.2f} | {runs[0]['candidates_s_per_1k']:.3f} | "
              f"{target}: {'met' if met else 'NOT met'} |")


if __name__ == "__main__":
    main()
