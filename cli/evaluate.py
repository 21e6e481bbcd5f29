"""``mgnm-pyg evaluate``: score a run's best checkpoint on a split."""

from __future__ import annotations

import json
from pathlib import Path

import click
from mgnm_pyg.cli.options import (
    config_option,
    data_override_option,
    progress_option,
    run_dir_argument,
    user_errors,
)


@click.command("evaluate")
@run_dir_argument
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="Split to evaluate.")
@click.option("--protocol", type=click.Choice(["sampled", "full"]), default="sampled",
              show_default=True,
              help="sampled: the persisted 1000 negatives per record (the paper's); "
                   "full: every item except the user's history.")
@click.option("--k", "ks", type=click.IntRange(min=1), multiple=True, default=(5,),
              show_default=True, help="Cut-off of NDCG/HIT/MRR; repeat for several.")
@data_override_option
@config_option("device")
@config_option("eval_batch_size")
@config_option("eval_per_user", default=False)
@click.option("--ranking-agreement", "agreement_users", type=click.IntRange(min=0), default=200,
              show_default=True,
              help="Also report the mean Spearman correlation between the full item rankings "
                   "of this many users of the split (seeded; 1 = everyone gets the same order, "
                   "as popularity does), with a warning above 0.95; 0 skips it.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@progress_option
@user_errors
def evaluate(run_dir: Path, split: str, protocol: str, ks: tuple[int, ...], data: str | None,
             device: str, eval_batch_size: int, eval_per_user: bool, agreement_users: int,
             as_json: bool, progress: bool) -> None:
    """Evaluate RUN_DIR/checkpoints/best.pt: GAUC, NDCG@K, HIT@K, MRR@K.

    The metrics are printed and written to RUN_DIR/eval_<split>_<protocol>.json.
    """
    from mgnm_pyg.inference.agreement import describe
    from mgnm_pyg.inference.evaluate import evaluate_run
    from mgnm_pyg.training.evaluation import metric_names
    from mgnm_pyg.training.saved_run import load_run

    run = load_run(run_dir, data=data, device=device)
    metrics, out = evaluate_run(run, split, protocol, tuple(sorted(set(ks))),
                                batch_size=eval_batch_size, agreement_users=agreement_users,
                                progress=progress, per_user=eval_per_user)
    if agreement_users and "ranking_agreement" in metrics:
        users = min(agreement_users, len(set(run.dataset.records[split].users.tolist())))
        lines = describe(metrics["ranking_agreement"], users, split, run.config.model)
        for line in lines[1:]:  # the warning; the value is among the metrics
            click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(metrics, indent=2, sort_keys=True))
        return
    click.echo(f"{split} split, {protocol} protocol, best epoch {run.epoch}:")
    for name in metric_names(metrics):
        click.echo(f"  {name:>10}  {metrics[name]:.4f}")
    counts = ", ".join(f"{n[2:]} {int(v)}" for n, v in metrics.items() if n.startswith("n_"))
    if counts:
        click.echo(f"  ({counts})")
    click.echo(f"written to {out}")
