"""``mgnm-pyg tune``: an Optuna search over training settings, on the validation split."""

from __future__ import annotations

from pathlib import Path

import click
from mgnm_pyg.cli.options import user_errors


@click.command("tune")
@click.argument("space", type=click.Path(dir_okay=False, path_type=Path), required=False,
                metavar="[SPACE.toml]")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/tune"), show_default=True,
              help="Folder of the study: its database, trial run folders and report.")
@click.option("--storage", default=None, metavar="PATH|URL",
              help="Study database: a SQLite file or a database URL "
                   "[default: OUT_DIR/study.db].")
@click.option("--study-name", default="mgnm", show_default=True,
              help="Name of the study in the database; trials go to OUT_DIR/STUDY_NAME/.")
@click.option("--n-trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Trials the study should have in all, those already finished included: "
                   "running the command again resumes the study up to this number.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Start no new trial after this many seconds.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the TPE sampler.")
@click.option("--pruner", type=click.Choice(["median", "none"]), default="median",
              show_default=True,
              help="Stop a trial whose validation metric is below the median of earlier "
                   "trials at the same epoch (median), or never (none).")
@click.option("--startup-trials", type=click.IntRange(min=0), default=5, show_default=True,
              help="Trials the median pruner lets finish before it prunes any.")
@click.option("--warmup-epochs", type=click.IntRange(min=0), default=1, show_default=True,
              help="Epochs of each trial that are never pruned.")
@click.option("--report-only", is_flag=True,
              help="Write and print the report of an existing study; train nothing.")
@click.option("--verbose", is_flag=True, help="Show every trial's epoch table.")
@click.pass_context
@user_errors
def tune(ctx: click.Context, space: Path | None, out_dir: Path, storage: str | None,
         study_name: str, n_trials: int, timeout: float | None, seed: int, pruner: str,
         startup_trials: int, warmup_epochs: int, report_only: bool, verbose: bool) -> None:
    """Search training settings with Optuna: the fixed settings and the [search] table of
    SPACE.toml (see the README), the best validation --select-metric of each trial as the
    objective (the test split is never used), poor trials pruned epoch by epoch.

    The study is stored in SQLite, so running the same command again after an
    interruption resumes it: a cut-short trial runs again from its last epoch and the
    study stops at --n-trials trials in all. At the end the best trial, a table of trials
    and each parameter's importance are printed and written to
    OUT_DIR/STUDY_NAME/report.md and report.json.
    """
    from mgnm_pyg.errors import TrainingInterrupted
    from mgnm_pyg.experiments.tune import StudySettings, import_optuna, open_study, run_study
    from mgnm_pyg.experiments.tune_report import write_report
    from mgnm_pyg.experiments.tune_space import load_space

    if space is None and not report_only:
        raise click.UsageError("give the search-space file SPACE.toml (or --report-only)")
    parsed = load_space(space) if space is not None else None
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # each trial gets its own line
    settings = StudySettings(out_dir=out_dir, study_name=study_name, storage=storage,
                             n_trials=n_trials, timeout=timeout, seed=seed, pruner=pruner,
                             startup_trials=startup_trials, warmup_epochs=warmup_epochs)
    if report_only:
        study = open_study(settings)
    else:
        try:
            study = run_study(parsed, settings, echo=click.echo, verbose=verbose)
        except TrainingInterrupted as exc:
            click.echo(f"Stopped: {exc}. Run the same command again to resume the study.",
                       err=True)
            ctx.exit(130)
    report, path = write_report(study, out_dir, seed=seed)
    best = report["best"]
    if best is None:
        click.echo("no trial has completed yet")
    else:
        params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        click.echo(f"best trial {best['number']}: validation {report['select_metric']}="
                   f"{best['value']:.4f}; {params}")
    if report["importance"] is None:
        click.echo(f"parameter importance: {report['importance_note']}")
    else:
        click.echo("parameter importance: " + ", ".join(
            f"{k} {v:.2f}" for k, v in report["importance"].items()))
    click.echo(f"report written to {path} (and report.json)")
