"""``mgnm-pyg bench`` (Table 4 columns) on the tiny synthetic preset."""

from __future__ import annotations

import json
import math
import traceback

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from mgnm_pyg.cli import main

from mgnm_pyg.data.sampler import LengthBucketSampler
from mgnm_pyg.data.store import resolve_dataset
from mgnm_pyg.experiments.timing import (
    EVAL_NEGATIVES,
    eval_dataset,
    paper_dim,
    paper_row,
    timed_batches,
)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    out, md = folder / "bench.json", folder / "bench.md"
    threads = torch.get_num_threads()  # --threads sets it for the whole process
    try:
        r = CliRunner().invoke(main, ["bench", "--quick", "--datasets", "synthetic:tiny",
                                      "--device", "cpu", "--threads", "1", "--iters", "2",
                                      "--warmup", "1", "--eval-records", "40",
                                      "--out", str(out), "--markdown", str(md)])
    finally:
        torch.set_num_threads(threads)
    assert r.exit_code == 0, r.output + "".join(traceback.format_exception(*r.exc_info))
    return json.loads(out.read_text()), md.read_text(), r.output


def test_report_has_every_column(report):
    data, _, _ = report
    assert set(data) == {"device", "settings", "paper_table4", "results"}
    assert data["device"]["type"] == "cpu" and data["device"]["name"]
    assert data["device"]["threads"] == 1
    assert data["paper_table4"]["toys"]["iterations_per_epoch"] == 13202
    (row,) = data["results"]
    assert row["dataset"] == "synthetic:tiny" and row["dim"] == 16
    assert set(row["train"]) == {"dense", "mp"}
    for t in row["train"].values():
        assert t["iterations_timed"] == 2
        assert t["seconds_per_iteration"] > 0 and t["peak_rss_mb"] > 0
        seconds = [x["seconds"] for x in t["timed"]]
        assert len(seconds) == 2 and min(seconds) > 0
        assert t["seconds_per_iteration"] == pytest.approx(float(np.median(seconds)))
        assert t["seconds_per_iteration_mean"] == pytest.approx(float(np.mean(seconds)))
        # the epoch estimate is the mean iteration times the iterations per epoch
        assert t["minutes_per_epoch"] == pytest.approx(
            t["seconds_per_iteration_mean"] * row["iterations_per_epoch"] / 60)


def test_iterations_per_epoch_is_train_records_over_batch(report):
    data, _, _ = report
    (row,) = data["results"]
    # reference: the dataset as training sees it (with its persisted candidates)
    n_train = len(resolve_dataset("synthetic:tiny").records["train"])
    assert row["train_records"] == n_train
    assert row["iterations_per_epoch"] == math.ceil(n_train / 256)


def test_evaluation_is_timed_on_a_subset_and_extrapolated(report):
    data, _, _ = report
    (row,) = data["results"]
    n_test = len(resolve_dataset("synthetic:tiny").records["test"])
    for protocol in ("sampled", "full"):
        e = row["eval"][protocol]
        assert e["records_total"] == n_test
        assert 40 <= e["records_timed"] < n_test and e["extrapolated"]
        assert e["seconds_split"] == pytest.approx(e["seconds"] * n_test / e["records_timed"])


def test_markdown_table(report):
    _, md, output = report
    lines = md.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| dataset | d | conv"))
    assert lines[header + 1].startswith("|---")
    rows = lines[header + 2:header + 4]
    assert [r.split("|")[3].strip() for r in rows] == ["dense", "mp"]
    assert "(extrapolated)" in md
    assert md.strip() in output  # printed as well as written


def test_load_time_and_peak_memory_are_reported(report):
    data, md, _ = report
    (row,) = data["results"]
    assert row["load_seconds"] > 0 and row["load_peak_rss_mb"] > 0
    assert row["load_peak_rss_since"] == "this load"  # counted from the load's start
    line = next(x for x in md.splitlines() if x.startswith("| synthetic:tiny | 1,500 |"))
    assert f"| {row['load_seconds']:.1f} |" in line


def test_eval_subset_holds_whole_users_with_1000_negatives():
    data = resolve_dataset("synthetic:tiny")
    timed, total = eval_dataset(data, 40, seed=0)
    test, sub = data.records["test"], timed.records["test"]
    assert total == len(test) and len(sub) >= 40
    for user in set(sub.users.tolist()):  # every record of a chosen user is kept
        assert (sub.users == user).sum() == (test.users == user).sum()
    assert timed.candidates["test"].shape == (len(sub), EVAL_NEGATIVES)
    assert data.records["test"] is test  # the original is untouched


def test_paper_rows_and_dimension():
    assert paper_row("synthetic:musical-instruments") == "musical-instruments"
    assert paper_row("toys") == "toys" and paper_row("/data/prepared/toys/") == "toys"
    assert paper_row("synthetic:tiny") is None
    assert paper_dim("synthetic:micro-video") == 40 and paper_dim("toys") == 16


def test_unknown_dataset_is_a_clean_error():
    r = CliRunner().invoke(main, ["bench", "--datasets", "no-such-data", "--device", "cpu"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "unknown dataset 'no-such-data'" in r.output


def test_markdown_prints_the_paper_row_beside_ours():
    from mgnm_pyg.cli.bench import format_markdown

    train = {"seconds_per_iteration": 0.5, "seconds_per_iteration_mean": 0.6,
             "minutes_per_epoch": 0.6 * 2407 / 60, "peak_rss_mb": 1234.4}
    report = {
        "device": {"type": "cpu", "name": "Some CPU", "threads": 2, "torch": "x"},
        "settings": {"n_interests": 4, "n_layers": 3, "routing_iters": 3, "max_len": 100,
                     "batch_size": 256, "negatives": 5, "iters": 5, "warmup": 1,
                     "eval_negatives": 1000},
        "results": [{"dataset": "synthetic:musical-instruments", "dim": 16,
                     "iterations_per_epoch": 2407, "train": {"dense": train},
                     "paper": {"seconds_per_iteration": 0.0598, "iterations_per_epoch": 2373,
                               "minutes_per_epoch": 2.37}}],
    }
    md = format_markdown(report)
    assert ("| synthetic:musical-instruments | 16 | dense | 0.5000 | 2,407 | 24.07 | 1,234 "
            "| 0.0598 | 2,373 | 2.37 |") in md
    assert "Some CPU" in md and "records timed" not in md  # no evaluation table without eval


def test_timed_batches_are_a_stratified_sample_by_width():
    lengths = np.random.default_rng(0).integers(1, 101, size=1000)
    sampler = LengthBucketSampler(lengths, 64, shuffle=True, seed=0)
    widths = sorted(int(lengths[b].max()) for b in sampler.batches())  # 16 batches
    picked = timed_batches(sampler, iters=5, warmup=7, seed=0)
    assert len(picked) == 12
    got = [int(lengths[b].max()) for b in picked]
    # the middle of 5 equal strata of 16 batches: int((i + 0.5) * 3.2)
    assert sorted(got[7:]) == [widths[i] for i in (1, 4, 8, 11, 14)]
    # the warm-up cycles through the timed batches themselves
    assert [b.tolist() for b in picked[:7]] == [b.tolist() for b in picked[7:] + picked[7:9]]
