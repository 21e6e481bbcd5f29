"""``mgnm-pyg recommend``: top-K items for one user from a trained run."""

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


@click.command("recommend")
@run_dir_argument
@click.option("--user", default=None, metavar="RAW_ID", help="The user's raw id.")
@click.option("--all-users", is_flag=True,
              help="Recommend for every user of the dataset (batched, on the device) and "
                   "write a Parquet file (--out) with the columns user, user_id, rank, item, "
                   "item_id, score.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.parquet", help="With --all-users: the file to write (atomically).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --all-users: users scored per batch.")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of items to recommend.")
@click.option("--history", multiple=True, metavar="RAW_ITEM",
              help="History item (raw id), oldest first; repeat for several. Default: the "
                   "user's known sequence (its last max_len items). A user the run has never "
                   "seen needs --history and is scored with the mean trained user embedding "
                   "standing in for x_u.")
@data_override_option
@config_option("device")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@progress_option
@user_errors
def recommend(run_dir: Path, user: str | None, all_users: bool, out: Path | None,
              batch_size: int, k: int, history: tuple[str, ...], data: str | None,
              device: str, as_json: bool, progress: bool) -> None:
    """Top-K raw item ids with their scores for one user of RUN_DIR's best checkpoint
    (--user), or for every user into a Parquet file (--all-users --out FILE).

    Items of the history are never recommended.
    """
    from mgnm_pyg.inference.recommend import recommend as top_k
    from mgnm_pyg.training.saved_run import load_run

    if all_users:
        if user is not None or history or as_json:
            raise click.UsageError("--all-users excludes --user, --history and --json")
        if out is None:
            raise click.UsageError("--all-users needs --out FILE.parquet")
    elif user is None:
        raise click.UsageError("give --user RAW_ID, or --all-users --out FILE.parquet")
    elif out is not None:
        raise click.UsageError("--out only applies with --all-users")
    run = load_run(run_dir, data=data, device=device)
    if all_users:
        from mgnm_pyg.inference.recommend_all import recommend_all

        rows = recommend_all(run, out, k=k, batch_size=batch_size, progress=progress)
        click.echo(f"wrote {rows:,} recommendations (top {k} of {run.dataset.n_users:,} users) "
                   f"to {out}")
        return
    rec = top_k(run, user, k=k, history=list(history) if history else None)
    if as_json:
        click.echo(json.dumps(rec.to_dict(), indent=2))
        return
    if not rec.known_user:
        click.echo(f"user {user!r} is new to this run: the mean trained user embedding "
                   f"stands in for x_u")
    shown = " ".join(rec.history[-10:])
    if len(rec.history) > 10:
        shown = "... " + shown
    click.echo(f"history ({len(rec.history)} items, oldest first): {shown}")
    click.echo(f"{'rank':>4}  {'item':<20}  score")
    for rank, (item, score) in enumerate(zip(rec.items, rec.scores, strict=True), start=1):
        click.echo(f"{rank:4d}  {item:<20}  {score:.4f}")
