"""The study of issue 21: which training-regime changes take MGNM off the popularity plateau.

Each variant is a set of settings over the paper's defaults (``TrainConfig()``); each
run trains on the validation split only for selection, then tests its best checkpoint
(sampled and full protocols) and measures the ranking agreement of 200 test users.
Runs are resumable and shareable: a second process skips the run the first one holds
(``study.lock``; a lock left by a killed process is taken over), and an interrupted run
continues from ``last.pt``.

    OMP_NUM_THREADS=1 python benchmarks/personalise_study.py --data toys \\
        --variants paper-scale10-ssm,tuned --seeds 0 --epochs 15 --out-dir runs/study
    python benchmarks/personalise_study.py --out-dir runs/study --report
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

from mgnm_pyg.experiments.variants import TABLES
from mgnm_pyg.files import LockHeld, atomic_write_json, process_lock

SSM = {"loss": "sampled-softmax", "shared_negatives": 1000}
COSINE = {"lr": 3e-3, "lr_schedule": "cosine", "lr_warmup_epochs": 0.5}
#: the first tuned preset: the authors' two choices, constant lr 1e-3, no warm-up
V0 = {"preset": "tuned", "n_layers": 3, "lr": 1e-3, "lr_schedule": "constant",
      "lr_warmup_epochs": 0.0, "capsule_output": "squash"}
#: the tuned preset before its capsule output became the mean of its inputs (one graph
#: level, squashed capsules): the variants that ran on it keep it
S1 = {"preset": "tuned", "n_layers": 1, "capsule_output": "squash"}
#: the tuned preset before it went to one graph level: the variants that ran on it keep it
L3 = {**S1, "n_layers": 3}
#: name -> settings over the paper's defaults.
VARIANTS: dict[str, dict] = {
    "paper": {},
    "paper-scale10-ssm": {"score_scale": 10.0, **SSM},
    "tuned": {"preset": "tuned"},
    "tuned-v0": V0,
    # the tuned preset with one of its changes taken back
    "tuned-v0-no-scale": {**V0, "score_scale": 1.0},
    "tuned-no-scale": {**L3, "score_scale": 1.0},
    "tuned-bce": {**L3, "loss": "bce"},
    # the tuned preset with one more change ("tuned-lr3e-3-cosine" is the three-level
    # preset itself, 5 seeds; the rest change the preset as it is)
    "tuned-lr3e-3-cosine": {**L3, **COSINE},
    "tuned-v0-center-rescale": {**V0, "level_norm": "center-rescale"},
    "tuned-center-rescale": {"preset": "tuned", "level_norm": "center-rescale"},
    "tuned-learn-scale": {"preset": "tuned", "learn_score_scale": True},
    "tuned-pop-logq": {"preset": "tuned", "negative_sampling": "popularity",
                       "logq_correction": True},
    "tuned-scale20": {"preset": "tuned", "score_scale": 20.0},
    # the item table drawn larger or smaller than Glorot (item_init_scale)
    "tuned-init-scale2": {"preset": "tuned", "item_init_scale": 2.0},
    "tuned-init-scale05": {"preset": "tuned", "item_init_scale": 0.5},
    "tuned-init-scale025": {"preset": "tuned", "item_init_scale": 0.25},
    "tuned-batch64": {"preset": "tuned", "batch_size": 64},
    # Eq. 1's logits scaled, so that A can leave 0.5 (the graph adds nothing at 1)
    "tuned-adj-scale10": {"preset": "tuned", "adjacency_scale": 10.0},
    "tuned-adj-scale30": {"preset": "tuned", "adjacency_scale": 30.0},
    # the number of interests K under tuned (the paper's Figure 4 has K = 4 best)
    "tuned-K2": {"preset": "tuned", "n_interests": 2},
    "tuned-K8": {"preset": "tuned", "n_interests": 8},
    "tuned-relu-interests": {**L3, "interest_activation": "relu",
                             "bilstm_mode": "interests"},
    # the loss on the max-pooled score that ranks, not summed over the levels
    "tuned-pooled-loss": {**L3, "level_loss": "pooled"},
    # fewer graph levels (w/o UGCN is level 0 alone)
    "tuned-L1": S1,
    "tuned-L2": {**S1, "n_layers": 2},
    "tuned-L1-pooled-loss": {**S1, "level_loss": "pooled"},
    # the final capsule output as a weighted mean of its inputs, not squashed: the preset
    # since it ran (its runs carry this name; "tuned" is the same settings)
    "tuned-capsule-mean": {"preset": "tuned", "capsule_output": "mean"},
    # the preset as it is with one of its changes taken back
    "tuned-mean-no-scale": {"preset": "tuned", "score_scale": 1.0},
    "tuned-mean-bce": {"preset": "tuned", "loss": "bce"},
    "tuned-mean-relu-interests": {"preset": "tuned", "interest_activation": "relu",
                                  "bilstm_mode": "interests"},
    "tuned-mean-L3": {"preset": "tuned", "n_layers": 3},
    "tuned-mean-lr1e-3": {"preset": "tuned", "lr": 1e-3, "lr_schedule": "constant",
                          "lr_warmup_epochs": 0.0},
    # the one-level squashing preset with one of its changes taken back
    "tuned-L1-no-scale": {**S1, "score_scale": 1.0},
    "tuned-L1-bce": {**S1, "loss": "bce"},
    "tuned-L1-relu-interests": {**S1, "interest_activation": "relu",
                                "bilstm_mode": "interests"},
    # the baselines as the paper trains them (BCE, 5 negatives, lr 1e-3)
    "pop": {"model": "pop"},
    "gru4rec": {"model": "gru4rec"},
    "comirec-dr": {"model": "comirec-dr"},
    "sasrec": {"model": "sasrec"},
    "sasrec-ssm": {"model": "sasrec", **SSM},
    "gru4rec-ssm": {"model": "gru4rec", **SSM},
    "comirec-dr-ssm": {"model": "comirec-dr", **SSM},
    # the baselines under tuned's optimisation too (loss, lr 3e-3, cosine, warm-up)
    "sasrec-ssm-cosine": {"model": "sasrec", **SSM, **COSINE},
    "gru4rec-ssm-cosine": {"model": "gru4rec", **SSM, **COSINE},
    "comirec-dr-ssm-cosine": {"model": "comirec-dr", **SSM, **COSINE},
}
# issue 19: the authors' preset, and one of its differences at a time on the paper's
# defaults (the 50-epoch runs without early stopping: --epochs 50 --patience 50)
VARIANTS.update({
    "authors": {"preset": "authors"},
    "paper-per-position-maps": {"capsule_maps": "per-position"},
    "paper-batch42": {"batch_size": 42},
    "paper-identity-interests": {"interest_activation": "identity"},
})
# Table 3's ablations of the architecture on the squashing one-level preset (tuned-wo-ugcn,
# ...), where they first ran, and on the preset as it is (tuned-mean-wo-ugcn, ...). The
# other extractors have no capsule output: tuned-scn-* are Table 3's rows on both.
TABLE3 = [row for row in TABLES["table3"] if row.overrides]
VARIANTS.update({f"tuned-{row.name}": {**S1, **row.overrides} for row in TABLE3})
VARIANTS.update({f"tuned-mean-{row.name}": {"preset": "tuned", **row.overrides}
                 for row in TABLE3 if "extractor" not in row.overrides})
# w/o UGCN is level 0 alone whatever n_layers is; its runs began under the three-level
# preset, and it keeps n_layers = 3 so that its five seeds draw their weights alike
VARIANTS["tuned-wo-ugcn"] = {**L3, "use_graph": False}


def config_of(variant: str, data: str, seed: int, epochs: int, patience: int):
    from mgnm_pyg.training.settings import build_config

    settings = dict(VARIANTS[variant])
    preset = settings.pop("preset", None)
    return build_config({**settings, "data": data, "seed": seed, "epochs": epochs,
                         "patience": patience}, preset=preset)


def train_one(run_dir: Path, variant: str, args) -> None:
    from mgnm_pyg.insight.personalization import ranking_agreement
    from mgnm_pyg.training.trainer import Trainer

    last = run_dir / "checkpoints" / "last.pt"
    if last.exists():
        trainer = Trainer.resume(run_dir, {"epochs": args.epochs, "patience": args.patience},
                                 progress=False)
    else:
        config = config_of(variant, args.data, int(run_dir.name.rsplit("seed", 1)[1]),
                           args.epochs, args.patience)
        trainer = Trainer(config, run_dir, progress=False)
    trainer.fit()
    agreement = ranking_agreement(trainer.model, trainer.dataset, "test", n_users=200,
                                  max_len=trainer.config.max_len, seed=0,
                                  device=trainer.device)
    atomic_write_json(run_dir / "agreement.json", {"ranking_agreement": agreement})
    print(f"{run_dir}: ranking agreement {agreement:.3f}", flush=True)


def run_all(args) -> None:
    for variant in args.variants.split(","):
        if variant not in VARIANTS:
            sys.exit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    for seed in args.seeds:
        for variant in args.variants.split(","):
            run_dir = args.out_dir / f"{variant}-seed{seed}"
            if (run_dir / "agreement.json").exists():
                continue
            try:
                with process_lock(run_dir / "study.lock", busy=str(run_dir)):
                    print(f"training {run_dir}", flush=True)
                    train_one(run_dir, variant, args)
            except LockHeld as exc:
                print(f"skipped: {exc}", flush=True)


def report(out_dir: Path, args_compare: str | None = None) -> None:
    rows: dict[str, list[dict]] = {}
    for run_dir in sorted(out_dir.glob("*-seed*")):
        log = run_dir / "metrics.jsonl"
        if not log.exists():
            continue
        history = [json.loads(line) for line in log.read_text().splitlines() if line]
        if not history:
            continue
        # the epoch the run kept: by its own selection metric (the authors': GAUC)
        config = json.loads((run_dir / "config.json").read_text())
        select = config.get("select_metric", "ndcg@5")
        best = max(history, key=lambda r: r["valid"][select])
        row = {"epochs": len(history), "best_epoch": best["epoch"],
               "valid_hit": best["valid"]["hit@5"], "valid_ndcg": best["valid"]["ndcg@5"],
               "sec": statistics.median(r["timing"]["seconds"] for r in history)}
        if (run_dir / "test_metrics.json").exists():
            test = json.loads((run_dir / "test_metrics.json").read_text())
            full = test.get("full", {})
            row.update(test_hit=test["sampled"]["hit@5"], test_ndcg=test["sampled"]["ndcg@5"],
                       test_gauc=test["sampled"]["gauc"], full_hit=full.get("hit@5"),
                       full_ndcg=full.get("ndcg@5"),
                       # the authors' per-user metric, where the run computed it
                       user_hit=test["sampled"].get("per_user_pooled_hit@5"),
                       user_full_hit=full.get("per_user_pooled_hit@5"))
        if (run_dir / "agreement.json").exists():
            row["agreement"] = json.loads((run_dir / "agreement.json").read_text())[
                "ranking_agreement"]
        rows.setdefault(run_dir.name, []).append(row)
    print("| run | epochs (best) | s/epoch | valid HIT@5 | valid NDCG@5 | test HIT@5 | "
          "test NDCG@5 | full HIT@5 | agreement |")
    print("|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    for name, (row,) in rows.items():
        print(f"| {name} | {row['epochs']} ({row['best_epoch']}) | {row['sec']:.0f} | "
              f"{fmt(row['valid_hit'])} | {fmt(row['valid_ndcg'])} | {fmt(row.get('test_hit'))}"
              f" | {fmt(row.get('test_ndcg'))} | {fmt(row.get('full_hit'))} | "
              f"{'-' if 'agreement' not in row else format(row['agreement'], '.3f')} |")
    summarise(rows, args_compare)


# validation first: the split that selects (the paired tests of a switch are read there)
METRICS = (("valid_hit", "valid HIT@5"), ("test_hit", "test HIT@5"),
           ("test_ndcg", "test NDCG@5"), ("test_gauc", "GAUC"),
           ("full_hit", "full HIT@5"), ("full_ndcg", "full NDCG@5"), ("agreement", "agreement"),
           ("user_hit", "per-user HIT@5"), ("user_full_hit", "per-user full HIT@5"))


def summarise(rows: dict[str, list[dict]], compare: str | None) -> None:
    """Mean +- std over seeds per variant; paired t-tests (by seed) of ``compare``."""
    from mgnm_pyg.experiments.stats import mean_std, paired_t_test

    by_variant: dict[str, dict[int, dict]] = {}
    for name, (row,) in rows.items():
        variant, seed = name.rsplit("-seed", 1)
        if "agreement" in row:  # finished runs only
            by_variant.setdefault(variant, {})[int(seed)] = row
    print("\n| variant | seeds | " + " | ".join(label for _, label in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for variant, seeds in by_variant.items():
        cells = []
        for key, _ in METRICS:
            values = [r.get(key) for r in seeds.values()]
            if None in values:  # a metric some runs did not compute
                cells.append("-")
                continue
            mean, std = mean_std(values)
            cells.append(f"{mean:.4f} +- {std:.4f}" if len(seeds) > 1 else f"{mean:.4f}")
        print(f"| {variant} | {len(seeds)} | " + " | ".join(cells) + " |")
    if compare is None or compare not in by_variant:
        return
    print(f"\nPaired t-tests of {compare} against each variant, over the seeds both "
          "finished (two-sided; difference = mean of its value minus the other's).\n")
    print("| against | seeds | " + " | ".join(f"{label}: diff, p" for _, label in METRICS)
          + " |")
    print("|---|---|" + "---|" * len(METRICS))
    mine = by_variant[compare]
    for variant, seeds in by_variant.items():
        common = sorted(set(mine) & set(seeds))
        if variant == compare or len(common) < 2:
            continue
        cells = []
        for key, _ in METRICS:
            a, b = [mine[s].get(key) for s in common], [seeds[s].get(key) for s in common]
            if None in a or None in b:
                cells.append("-")
                continue
            test = paired_t_test(a, b)
            cells.append(f"{test.mean_difference:+.4f}, {test.p:.2g}")
        print(f"| {variant} | {len(common)} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="toys")
    parser.add_argument("--variants", default="tuned")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=4)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/study"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--compare", default=None,
                        help="with --report: the variant tested against every other "
                        "(paired t-tests over the seeds both have finished)")
    args = parser.parse_args()
    if args.report:
        report(args.out_dir, args.compare)
        return
    torch.set_num_threads(args.threads)
    run_all(args)


if __name__ == "__main__":
    main()
