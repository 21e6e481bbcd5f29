"""benchmarks/reproduce.py: the table and figure commands on synthetic:tiny."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from t_closed_forms import p_two_sided_df1, p_two_sided_df2

from mgnm_pyg.experiments.reproduce import Plan
from mgnm_pyg.experiments.variants import TABLES
from mgnm_pyg.training.config import TrainConfig

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"
MODELS = ("MGNM", "Pop", "GRU4Rec", "SASRec", "ComiRec-DR")


def _cli():
    spec = importlib.util.spec_from_file_location("reproduce_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reproduce


@contextmanager
def _held_by_a_live_process(run: Path):
    """``run``'s training lock, held by a live process for the ``with`` block."""
    run.mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (run / ".training.lock").write_text(str(owner.pid))
        yield owner.pid
    finally:
        owner.kill()
        owner.wait()


# ---------------------------------------------------------------- variants
def test_each_ablation_changes_one_setting_of_the_reference():
    plan = Plan(data="synthetic:tiny", seeds=[0], out_dir=Path("x"))
    ref = plan.config(TABLES["table3"][0], 0).to_dict()
    assert ref == TrainConfig(data="synthetic:tiny", seed=0).to_dict()
    expected = {"wo-ugcn": {"use_graph": False}, "wo-l1norm": {"theta1": 0.0},
                "wo-bilstm": {"use_bilstm": False}, "wo-maxpool": {"level_pooling": "sum"},
                "scn-selfatt": {"extractor": "self_attention"},
                "scn-transformer": {"extractor": "transformer"},
                "scn-bilstm": {"extractor": "bilstm"}, "scn-sum": {"extractor": "sum"}}
    got = {}
    for variant in TABLES["table3"][1:]:
        cfg = plan.config(variant, 0).to_dict()
        got[variant.name] = {k: v for k, v in cfg.items() if ref[k] != v}
    assert got == expected
    models = [plan.config(v, 3).model for v in TABLES["table2"]]
    assert models == ["mgnm", "pop", "gru4rec", "sasrec", "comirec-dr"]
    # Table 3's full model is Table 2's MGNM run, not a second copy of it
    assert plan.run_dir("table3", TABLES["table3"][0], 1) == Path("x/table2/mgnm-seed1")


# ---------------------------------------------------------------- commands
def _mtimes(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.name in ("test_metrics.json", "last.pt", "best.pt")}


def test_table2_quick_writes_the_table_reuses_and_resumes(tmp_path, one_thread):
    cli, out = _cli(), tmp_path / "runs"
    args = ["table2", "--data", "synthetic:tiny", "--quick", "--device", "cpu",
            "--out-dir", str(out), "--markdown", str(tmp_path / "t2.md")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "10 trained, 0 resumed, 0 reused" in first.output
    md = (tmp_path / "t2.md").read_text()
    sampled, full = md.split("### Full ranking")
    for model in MODELS:  # a row of means in both protocols, a p-value row for baselines
        assert sampled.count(f"| {model} | ") == (1 if model == "MGNM" else 2)
        assert full.count(f"| {model} | ") == (1 if model == "MGNM" else 2)
    assert "| MGNM | " in sampled and "| 0.8078 |" in sampled  # paper's Toys GAUC beside ours
    assert ("2 seeds (0, 1) per row (--quick); at most 1 epochs, early stopping after 3 "
            "without a better validation ndcg@5; epochs run 1-1, best 1-1") in md

    # the p-values are those of a paired t-test on the seeds' values (2 seeds: 1 df)
    report = json.loads((out / "table2.json").read_text())
    for protocol in ("sampled", "full"):
        ref = [r["test"][protocol]["ndcg@5"] for r in report["results"]["mgnm"]["runs"]]
        for name, variant in report["results"].items():
            values = [r["test"][protocol]["ndcg@5"] for r in variant["runs"]]
            assert [r["seed"] for r in variant["runs"]] == [0, 1]
            cell = report["summary"][protocol][name]["ndcg@5"]
            assert cell["mean"] == pytest.approx(sum(values) / 2)
            if name == "mgnm":
                continue
            d = [x - y for x, y in zip(ref, values, strict=True)]
            if d[0] != d[1]:
                t = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(2))
                assert cell["p"] == pytest.approx(p_two_sided_df1(t), rel=1e-9)
                assert f"{cell['p']:.2g} ({cell['mean_difference']:+.4f})" in md

    before = _mtimes(out)
    assert len([p for p in before if p.endswith("test_metrics.json")]) == 10
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "0 trained, 0 resumed, 10 reused" in again.output
    assert _mtimes(out) == before  # nothing retrained, nothing re-tested

    run = out / "table2" / "gru4rec-seed1"
    saved = json.loads((run / "test_metrics.json").read_text())
    (run / "test_metrics.json").unlink()
    resumed = CliRunner().invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert "0 trained, 1 resumed, 9 reused" in resumed.output
    assert f"resuming {run} after epoch 1" in resumed.output
    assert json.loads((run / "test_metrics.json").read_text()) == saved
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == before[
        str(run / "checkpoints" / "last.pt")]

    # a folder that holds other settings is refused, naming the folder and the setting
    other = CliRunner().invoke(cli, [a for a in args if a != "--quick"] + ["--seeds", "1"])
    assert other.exit_code == 1
    assert "mgnm-seed0 holds a different run" in other.output and "dim=8" in other.output


def test_table3_quick_trains_each_ablation_with_its_one_change(tmp_path, one_thread):
    cli, out = _cli(), tmp_path / "runs"
    args = ["table3", "--data", "synthetic:tiny", "--quick", "--seeds", "1", "--device",
            "cpu", "--out-dir", str(out), "--markdown", str(tmp_path / "t3.md")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "9 trained, 0 resumed, 0 reused" in first.output
    sampled, full = (tmp_path / "t3.md").read_text().split("### Full ranking")
    for variant in TABLES["table3"]:
        assert f"| {variant.label} | " in sampled and f"| {variant.label} | " in full
    assert "| 0.7499 |" in sampled and "| 0.0929 |" in sampled  # paper's w/o UGCN

    # each ablation's run differs from the reference run in its overrides and nothing else
    reference = json.loads((out / "table2" / "mgnm-seed0" / "config.json").read_text())
    for variant in TABLES["table3"][1:]:
        config = json.loads((out / "table3" / f"{variant.name}-seed0" / "config.json")
                            .read_text())
        assert {k: v for k, v in config.items() if reference[k] != v} == variant.overrides

    # Table 2 finds its MGNM row already trained by Table 3
    shared = CliRunner().invoke(cli, ["table2", "--data", "synthetic:tiny", "--quick",
                                      "--seeds", "1", "--device", "cpu", "--out-dir",
                                      str(out), "--rows", "mgnm"])
    assert shared.exit_code == 0, shared.output
    assert "0 trained, 0 resumed, 1 reused" in shared.output


def test_figures_quick_draws_layers_interests_and_pooling(tmp_path, one_thread):
    out = tmp_path / "runs"
    result = CliRunner().invoke(_cli(), [
        "figures", "--data", "synthetic:tiny", "--quick", "--seeds", "1", "--device", "cpu",
        "--out-dir", str(out), "--figure", str(tmp_path / "f.png")])
    assert result.exit_code == 0, result.output
    assert "4 trained, 0 resumed, 0 reused" in result.output  # MGNM, L=1, K=2, sum-pooled
    assert (tmp_path / "f.png").stat().st_size > 10_000
    report = json.loads((out / "figures.json").read_text())
    points = sorted((r["n_layers"], r["n_interests"]) for r in report["rows"])
    assert points == [(1, 4), (3, 2), (3, 4)]
    assert sorted(Path(p).name for p in report["pooling"]) == ["mgnm-seed0",
                                                              "wo-maxpool-seed0"]
    # the max-pooled value of the reference run is the metric its training run reported
    ref = json.loads((out / "table2" / "mgnm-seed0" / "test_metrics.json").read_text())
    pooled = report["pooling"][str(out / "table2" / "mgnm-seed0")]
    assert pooled["max"] == pytest.approx(ref["sampled"]["ndcg@5"], abs=1e-12)
    assert {p["setting"] for p in report["pooling"].values()} == {"mgnm", "wo-maxpool"}
    # the pooling is inference only (the loss is per level): one epoch trained with either
    # gives the same weights, so the same value under each pooling
    summed = report["pooling"][str(out / "table3" / "wo-maxpool-seed0")]
    assert (summed["max"], summed["sum"]) == (pooled["max"], pooled["sum"])
    md = (out / "figures.md").read_text()
    assert "Figure 3" in md and "Figure 4" in md and "Figure 7" in md
    # each point: mean ± std over its runs, their number, and their best epochs
    l1 = json.loads((out / "figures" / "L1-seed0" / "test_metrics.json").read_text())
    assert f"| 1 | {l1['sampled']['ndcg@5']:.4f} ± — | 1 | 1-1 | — |" in md
    assert "Left out" not in md

    # --rows: only the named settings (here reused), in files of their own
    part = CliRunner().invoke(_cli(), [
        "figures", "--data", "synthetic:tiny", "--quick", "--seeds", "1", "--device", "cpu",
        "--out-dir", str(out), "--rows", "L1,K2"])
    assert part.exit_code == 0, part.output
    assert "0 trained, 0 resumed, 2 reused" in part.output
    report = json.loads((out / "figures-L1-K2.json").read_text())
    assert sorted((r["n_layers"], r["n_interests"]) for r in report["rows"]) == [(1, 4), (3, 2)]
    assert report["pooling"] == {} and (out / "figures-L1-K2.png").is_file()
    k_only = CliRunner().invoke(_cli(), [
        "figures", "--data", "synthetic:tiny", "--quick", "--seeds", "1", "--device", "cpu",
        "--out-dir", str(out), "--rows", "K2", "--report-only"])
    assert k_only.exit_code == 0, k_only.output
    against_l = k_only.output.split("Figure 3")[1].split("Figure 4")[0]
    assert "| (no finished runs) | | | | |" in against_l
    # a setting whose run another process holds is left out of the figure and named
    held = out / "figures" / "K2-seed1"
    with _held_by_a_live_process(held):
        more = CliRunner().invoke(_cli(), [
            "figures", "--data", "synthetic:tiny", "--quick", "--seeds", "2", "--device",
            "cpu", "--out-dir", str(out), "--rows", "L1,K2"])
    assert more.exit_code == 0, more.output
    assert "1 trained, 0 resumed, 2 reused, 1 skipped" in more.output
    report = json.loads((out / "figures-L1-K2.json").read_text())
    assert sorted((r["n_layers"], r["seed"]) for r in report["rows"]) == [(1, 0), (1, 1)]
    assert report["unfinished"] == {"K=2": "1 of 2 runs"}
    assert "Left out, not finished yet: K=2 (1 of 2 runs)." in more.output
    look = CliRunner().invoke(_cli(), [
        "figures", "--data", "synthetic:tiny", "--quick", "--seeds", "2", "--device", "cpu",
        "--out-dir", str(out), "--rows", "L1,K2", "--report-only"])
    assert look.exit_code == 0, look.output
    assert "0 trained, 0 resumed, 3 reused" in look.output
    assert "Left out, not finished yet: K=2 (1 of 2 runs)." in look.output
    assert not (held / "test_metrics.json").exists()
    empty = CliRunner().invoke(_cli(), [
        "figures", "--quick", "--report-only", "--out-dir", str(tmp_path / "none")])
    assert empty.exit_code == 1
    assert "no setting of the figures has all its runs finished" in empty.output

    bad = CliRunner().invoke(_cli(), ["figures", "--quick", "--out-dir", str(out),
                                      "--rows", "L9"])
    assert bad.exit_code == 1 and "'L9'" in bad.output and "wo-maxpool" in bad.output


def test_rows_split_a_table_between_processes(tmp_path, one_thread):
    cli, out = _cli(), tmp_path / "runs"
    args = ["table2", "--data", "synthetic:tiny", "--quick", "--device", "cpu",
            "--out-dir", str(out)]
    part = CliRunner().invoke(cli, [*args, "--rows", "pop, sasrec"])
    assert part.exit_code == 0, part.output
    assert "4 trained, 0 resumed, 0 reused" in part.output
    assert sorted(p.name for p in (out / "table2").iterdir()) == [
        "pop-seed0", "pop-seed1", "sasrec-seed0", "sasrec-seed1"]
    md = (out / "table2-pop-sasrec.md").read_text()
    assert "| Pop | " in md and "| SASRec | " in md and "| MGNM | " not in md
    assert "no t-tests" in md
    assert "mgnm (paper only" not in md and "gru4rec (paper only" not in md  # left out: not listed
    assert "SURGE (paper only, not implemented)" in md  # as before: the paper's other rows
    assert not list(out.rglob(".training.lock"))  # released after each run

    look = CliRunner().invoke(cli, [*args, "--report-only"])  # trains nothing
    assert look.exit_code == 0, look.output
    assert "0 trained, 0 resumed, 4 reused" in look.output
    assert "| Pop | " in look.output and "| MGNM | " not in look.output
    assert ("Left out, not finished yet: MGNM (0 of 2 runs); GRU4Rec (0 of 2 "
            "runs); ComiRec-DR (0 of 2 runs)") in look.output
    assert len(list((out / "table2").iterdir())) == 4
    empty = CliRunner().invoke(cli, [*args, "--report-only", "--out-dir", str(tmp_path / "no")])
    assert empty.exit_code == 1 and "no row of table2 has all its runs finished" in empty.output

    whole = CliRunner().invoke(cli, args)  # the rest of the table, reusing the four
    assert whole.exit_code == 0, whole.output
    assert "6 trained, 0 resumed, 4 reused" in whole.output

    bad = CliRunner().invoke(cli, [*args, "--rows", "pop,bert4rec"])
    assert bad.exit_code == 1
    assert "'bert4rec'" in bad.output and "mgnm, pop, gru4rec, sasrec, comirec-dr" in bad.output


def test_training_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path):
    import os

    from mgnm_pyg.errors import MGNMError
    from mgnm_pyg.files import process_lock

    run = tmp_path / "run"
    with _held_by_a_live_process(run) as owner:
        with pytest.raises(MGNMError, match=f"busy here: held by process {owner}"):
            with process_lock(run / ".training.lock", "busy here"):
                pass
    with process_lock(run / ".training.lock"):  # its owner is gone: the stale lock is taken
        assert (run / ".training.lock").read_text() == str(os.getpid())
    assert not (run / ".training.lock").exists()


def test_a_run_another_process_trains_is_skipped(tmp_path, one_thread):
    """Identical commands share a table: each skips the runs the others hold."""
    out = tmp_path / "runs"
    held = out / "table2" / "pop-seed0"
    with _held_by_a_live_process(held) as owner:
        result = CliRunner().invoke(_cli(), [
            "table2", "--data", "synthetic:tiny", "--quick", "--device", "cpu",
            "--out-dir", str(out), "--rows", "pop,sasrec"])
    assert result.exit_code == 0, result.output
    assert f"Pop seed 0: skipped, process {owner} is training it" in result.output
    assert "3 trained, 0 resumed, 0 reused, 1 skipped" in result.output
    assert "Left out, not finished yet: Pop (1 of 2 runs)." in result.output
    assert "| SASRec | " in result.output and "| Pop | " not in result.output
    assert not (held / "test_metrics.json").exists()



def rule(args: list[str]) -> str:
    """``epochs=E, patience=P`` of a command's ``--epochs``/``--patience`` (default 3)."""
    given = dict(zip(args[::2], args[1::2], strict=True))
    return f"epochs={given['--epochs']}, patience={given.get('--patience', '3')}"


def _epoch_rows(run: Path) -> list[dict]:
    """metrics.jsonl without the wall times (the only fields a resumed run may change)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "timing"} for r in rows]


@pytest.mark.parametrize("first, then", [
    (["--epochs", "1"], ["--epochs", "3"]),  # stopped by the epoch cap
    # validation NDCG@5 of seed 0 on tiny rises every epoch up to 20 and dips at 21
    (["--epochs", "22", "--patience", "1"], ["--epochs", "22", "--patience", "3"]),
])
def test_larger_patience_or_epochs_continue_a_finished_run(tmp_path, one_thread, first, then):
    """A run that stopped sooner than the new stopping rule allows is continued from its
    last epoch, and ends exactly as a run trained with that rule from the start."""
    cli = _cli()
    args = ["table2", "--data", "synthetic:tiny", "--quick", "--device", "cpu",
            "--rows", "mgnm", "--seeds", "1"]
    short, long = tmp_path / "short", tmp_path / "long"
    assert CliRunner().invoke(cli, [*args, *first, "--out-dir", str(short)]).exit_code == 0
    run = short / "table2" / "mgnm-seed0"
    epochs_before = len(_epoch_rows(run))
    continued = CliRunner().invoke(cli, [*args, *then, "--out-dir", str(short)])
    assert continued.exit_code == 0, continued.output
    scratch = CliRunner().invoke(cli, [*args, *then, "--out-dir", str(long)])
    assert scratch.exit_code == 0, scratch.output
    assert "1 trained, 0 resumed, 0 reused" in scratch.output

    reference = long / "table2" / "mgnm-seed0"
    assert _epoch_rows(run) == _epoch_rows(reference)
    assert (json.loads((run / "test_metrics.json").read_text())
            == json.loads((reference / "test_metrics.json").read_text()))
    # the first rule stopped it sooner (with patience 1, after epoch 21 of 22 on this seed)
    assert len(_epoch_rows(reference)) > epochs_before
    assert "0 trained, 0 resumed, 1 continued (stopped early before), 0 reused" in (
        continued.output)
    assert f"continuing {run} after epoch {epochs_before}" in continued.output
    assert "early stopping after 3 without" in continued.output

    # the longer run is not cut back by the shorter rule: reused, with a note that says
    # after which epoch that rule stops it (replayed on the validation history)
    back = CliRunner().invoke(cli, [*args, *first, "--out-dir", str(long)])
    assert back.exit_code == 0, back.output
    assert ("0 trained, 0 resumed, 1 reused (1 of them ran longer than this stopping rule "
            "allows)") in back.output
    assert (f"it ran {len(_epoch_rows(run))} epochs, longer than {rule(first)} allow (they "
            f"stop it after epoch {epochs_before}): reused as it is, not cut back"
            ) in back.output
    assert _epoch_rows(reference) == _epoch_rows(run)
    same = CliRunner().invoke(cli, [*args, *then, "--out-dir", str(long)])
    assert "0 trained, 0 resumed, 1 reused" in same.output and "not cut back" not in (
        same.output)


def test_figure_report_tests_each_point_against_the_reference_by_seed(tmp_path):
    """The figures' p-values: paired by seed against the reference point (L=3, K=4), and
    max- against sum-pooling over the runs of one training setting."""
    from mgnm_pyg.experiments.report import figure_report

    plan = Plan(data="synthetic:tiny", seeds=[0, 1, 2], out_dir=tmp_path)
    ref = {0: 0.020, 1: 0.018, 2: 0.021}
    k1 = {0: 0.037, 1: 0.031, 2: 0.040, 7: 0.5}  # seed 7 has no reference: not paired
    rows = [{"n_layers": 3, "n_interests": 4, "seed": s, "value": v, "best_epoch": 2 + s}
            for s, v in ref.items()]
    rows += [{"n_layers": 3, "n_interests": 1, "seed": s, "value": v, "best_epoch": 20 + s}
             for s, v in k1.items()]
    rows += [{"n_layers": 0, "n_interests": 4, "seed": s, "value": v, "best_epoch": 1}
             for s, v in ref.items()]  # equal to the reference on every seed: p = 1
    pooling = {f"{tmp_path}/table2/mgnm-seed{s}": {"setting": "mgnm", "max": v,
                                                   "sum": v + 0.001 * (s + 1)}
               for s, v in ref.items()}
    # A second setting whose runs are grouped apart from the first (its own mean row).
    pooling.update({f"{tmp_path}/table3/wo-maxpool-seed{s}": {
        "setting": "wo-maxpool", "max": 0.5, "sum": 0.4 + 0.01 * s} for s in ref})
    md = figure_report(plan, "ndcg@5", "sampled", rows, pooling, 1.0,
                       {"trained": 0, "resumed": 0, "reused": 9}, 2.0)["markdown"]

    d = [ref[s] - k1[s] for s in ref]
    t = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(3))
    p = p_two_sided_df2(t)
    mean, std = statistics.mean(k1.values()), statistics.stdev(k1.values())
    assert (f"| 1 | {mean:.4f} ± {std:.4f} | 4 | 20-27 | {p:.2g} ({statistics.mean(d):+.4f})"
            " |") in md
    assert "| 4 | 0.0197 ± 0.0015 | 3 | 2-4 | — |" in md  # the reference point itself
    assert "| 0 | 0.0197 ± 0.0015 | 3 | 1-1 | 1 (+0.0000) |" in md
    d = [-0.001 * (s + 1) for s in ref]
    p = p_two_sided_df2(statistics.mean(d) / (statistics.stdev(d) / math.sqrt(3)))
    assert (f"| mean of mgnm (3 runs; p max vs sum {p:.2g} (-0.0020)) | 0.0197 | "
            f"0.0217 |") in md
    d = [0.1 - 0.01 * s for s in ref]
    p = p_two_sided_df2(statistics.mean(d) / (statistics.stdev(d) / math.sqrt(3)))
    assert (f"| mean of wo-maxpool (3 runs; p max vs sum {p:.2g} (+0.0900)) | 0.5000 | "
            f"0.4100 |") in md
