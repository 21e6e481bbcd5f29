"""``mgnm-pyg train``: train MGNM or a baseline, validate every epoch, test the best checkpoint."""

from __future__ import annotations

from pathlib import Path

import click
from mgnm_pyg.cli.options import config_options, explicit_options, progress_option, user_errors

from mgnm_pyg.training.config import check_value, option_flag
from mgnm_pyg.training.settings import build_config, load_toml


@click.command("train")
@config_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder to create (default: runs/<data>-<timestamp>).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, metavar="RUN_DIR",
              help="Continue an interrupted run from its checkpoints/last.pt. Only --epochs, "
                   "--patience, --device, --eval-batch-size, --eval-full and --eval-per-user "
                   "may change.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE.toml",
              help="TOML file of settings (keys named like the options); the command line wins.")
@click.option("--preset", default=None, metavar="NAME",
              help="Packaged settings to start from: paper (the defaults), authors (MGNM "
                   "as the authors' code computes it, 42 records a batch, 50 epochs) or "
                   "tuned (the project's recommended MGNM); --config and the command line "
                   "win over it.")
@progress_option
@click.option("--tensorboard", "tensorboard_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="DIR",
              help="Also log every epoch (loss and its parts, validation metrics, learning "
                   "rate, times) to TensorBoard event files in DIR; needs the optional "
                   "package: pip install 'mgnm-pyg[tensorboard]'. metrics.jsonl stays the "
                   "record.")
@click.option("--ranking-agreement", "agreement_users", type=click.IntRange(min=0),
              default=200, show_default=True,
              help="At the end, the mean Spearman correlation between the full item rankings "
                   "of this many test users (seeded; written to personalization.json), with "
                   "a warning above 0.95; 0 skips it.")
@click.pass_context
@user_errors
def train(ctx: click.Context, out: Path | None, resume: Path | None, config_file: Path | None,
          preset: str | None, progress: bool, agreement_users: int,
          tensorboard_dir: Path | None, **_: object) -> None:
    """Train MGNM, or a baseline with --model, on a dataset (default: the synthetic demo data).

    Every epoch the training negatives are redrawn, the validation split is scored
    (sampled protocol) and the best checkpoint is kept by --select-metric; training stops
    after --patience epochs without improvement. The best checkpoint is then tested
    with the sampled and the full-ranking protocols. The run folder holds config.json,
    checkpoints/{best,last}.pt, metrics.jsonl and test_metrics.json.
    """
    from mgnm_pyg.errors import TrainingInterrupted
    from mgnm_pyg.inference.agreement import report_run
    from mgnm_pyg.training import distributed
    from mgnm_pyg.training.checkpoint import checkpoint_path
    from mgnm_pyg.training.saved_run import default_run_dir
    from mgnm_pyg.training.trainer import Trainer

    explicit = explicit_options(ctx)
    if resume is not None:
        if out is not None or preset is not None:
            raise click.UsageError("--resume continues a run as it was: it takes neither "
                                   "--out nor --preset")
        given = {n: check_value(n, v, "command line", option_flag(n)) for n, v in explicit.items()}
        changes = {**(load_toml(config_file) if config_file else {}), **given}
        trainer = Trainer.resume(resume, changes, progress=progress, echo=click.echo)
        trainer.echo(f"resuming {resume} after epoch {trainer.epoch}")
    else:
        config = build_config(explicit, config_file, preset=preset)
        run_dir = out if out is not None else default_run_dir(config)
        if checkpoint_path(run_dir, "last.pt").exists():
            raise click.UsageError(
                f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        trainer = Trainer(config, run_dir, progress=progress, echo=click.echo)
        trainer.echo(f"training on {config.data} ({trainer.dataset.n_users} users, "
                     f"{trainer.dataset.n_items} items) on {trainer.device}; run folder {run_dir}")
    logger = None
    if tensorboard_dir is not None and distributed.is_main():
        from mgnm_pyg.training.tracking import TensorBoardLogger

        logger = TensorBoardLogger(tensorboard_dir, trainer.optimizer)
        trainer.epoch_hooks.append(logger)
    try:
        trainer.fit()
    except TrainingInterrupted as exc:
        click.echo(f"Stopped: {exc}", err=True)
        ctx.exit(130)
    finally:
        if logger is not None:
            logger.close()
    if agreement_users and distributed.is_main():
        for line in report_run(trainer.run_dir, trainer.model, trainer.dataset, trainer.config,
                               trainer.device, n_users=agreement_users,
                               progress=trainer.progress):
            click.echo(line, err=line.startswith("Warning"))
