"""``mgnm-pyg reproduce``: the paper's Tables 2 and 3 and Figures 3, 4 and 7, one command each.

    mgnm-pyg reproduce table2 --data toys --seeds 5 --epochs 30
    mgnm-pyg reproduce table3 --data toys --seeds 5 --epochs 30
    mgnm-pyg reproduce figures --data toys --seeds 5 --epochs 30
    mgnm-pyg reproduce table2 --data synthetic:tiny --quick    # smoke check

Every (table, variant, seed) trains in ``--out-dir/<table>/<variant>-seed<s>``; finished
runs are reused and interrupted ones resumed, so a command can be stopped and run again.
``python benchmarks/reproduce.py`` runs the same group. The code is in
:mod:`mgnm_pyg.experiments.reproduce`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from mgnm_pyg.cli.options import config_option, user_errors


def _common(func: Callable) -> Callable:
    options = [
        click.option("--data", default="toys", show_default=True, metavar="SPEC",
                     help="Dataset: a prepared NAME (toys: mgnm-pyg prepare ... --name toys), "
                          "a PATH, or synthetic:PRESET."),
        click.option("--seeds", type=click.IntRange(min=1), default=None,
                     help="Runs per row, seeds 0..N-1 [default: 5; 2 with --quick]."),
        click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help="Most epochs per run (early stopping on validation still applies) "
                          "[default: the train default; 1 with --quick]."),
        click.option("--patience", type=click.IntRange(min=1), default=None,
                     help="Epochs without a better validation metric before a run stops "
                          "[default: the train default, 3]. Finished runs that stopped "
                          "sooner than a larger --patience or --epochs allows are "
                          "continued from their last epoch, not retrained."),
        click.option("--quick", is_flag=True,
                     help="2 seeds, 1 epoch, d=8, batch 128 (and a smaller figure grid): a "
                          "smoke check of the whole path, not a result."),
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("runs/reproduce"), show_default=True,
                     help="Root of the run folders (shared by the three commands)."),
        click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, metavar="FILE.md",
                     help="Markdown report [default: OUT_DIR/<command>.md]."),
        config_option("device"),
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="torch CPU threads (default: torch's; 1 is faster on a busy "
                          "machine)."),
        click.option("--progress/--no-progress", default=False, show_default=True,
                     help="Progress bars per epoch."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _rows_option(help_text: str) -> Callable:
    """``--rows a,b``, given to the command as a list of names (None: everything)."""
    def split(ctx: click.Context, param: click.Parameter, value: str | None
              ) -> list[str] | None:
        return None if value is None else [r.strip() for r in value.split(",") if r.strip()]

    return click.option("--rows", default=None, metavar="NAME[,NAME...]", callback=split,
                        help=help_text)


def _stem(name: str, rows: list[str] | None) -> str:
    """File stem of a report: ``table2``, or ``table2-pop-sasrec`` for ``--rows pop,sasrec``."""
    return name if rows is None else f"{name}-{'-'.join(rows)}"


def _plan(data: str, seeds: int | None, epochs: int | None, patience: int | None,
          quick: bool, out_dir: Path, device: str, threads: int | None, progress: bool,
          report_only: bool = False) -> Any:
    from mgnm_pyg.experiments.reproduce import Plan
    from mgnm_pyg.experiments.variants import QUICK_SEEDS

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    n = seeds if seeds is not None else (QUICK_SEEDS if quick else 5)
    return Plan(data=data, seeds=list(range(n)), out_dir=out_dir, epochs=epochs,
                patience=patience, quick=quick, device=device, progress=progress,
                report_only=report_only)


def _write(report: dict[str, Any], out_dir: Path, name: str, markdown: Path | None) -> None:
    from mgnm_pyg.files import atomic_write_json, atomic_write_text

    md = markdown if markdown is not None else out_dir / f"{name}.md"
    click.echo("\n" + report["markdown"])
    atomic_write_text(md, report["markdown"])
    atomic_write_json(out_dir / f"{name}.json", {k: v for k, v in report.items()
                                                 if k != "markdown"})
    click.echo(f"wrote {md} and {out_dir / f'{name}.json'}")


@click.group("reproduce")
def reproduce() -> None:
    """Train the runs behind the paper's tables and figures, and report ours beside theirs."""


def _table_command(table: str, help_text: str) -> None:
    @reproduce.command(table, help=help_text)
    @_common
    @_rows_option("Train and report only these rows (e.g. 'pop,sasrec'), so separate "
                  "processes can share a table; [default: every row].")
    @click.option("--report-only", is_flag=True,
                  help="Train nothing: report the rows whose runs have all finished, and "
                       "name the others (to look at a table while it is being trained).")
    @user_errors
    def command(data: str, seeds: int | None, epochs: int | None, patience: int | None,
                quick: bool, out_dir: Path, markdown: Path | None, device: str,
                threads: int | None, progress: bool, rows: list[str] | None,
                report_only: bool) -> None:
        from mgnm_pyg.experiments.reproduce import reproduce_table

        plan = _plan(data, seeds, epochs, patience, quick, out_dir, device, threads,
                     progress, report_only)
        _write(reproduce_table(table, plan, echo=click.echo, rows=rows), out_dir,
               _stem(table, rows), markdown)


_table_command("table2", "Table 2: MGNM, pop, gru4rec, sasrec, comirec-dr; GAUC, NDCG@5, "
               "HIT@5, MRR@5 (sampled and full ranking), mean ± std, paired t-tests.")
_table_command("table3", "Table 3: MGNM against w/o UGCN, w/o L1Norm, w/o BiLSTM, w/o "
               "MaxPool and the SCN replaced by self-attention, a Transformer, a BiLSTM, sum.")


@reproduce.command("figures")
@_common
@click.option("--metric", default="ndcg@5", show_default=True,
              help="Test metric drawn (gauc, ndcg@5, hit@5, mrr@5).")
@click.option("--protocol", type=click.Choice(["sampled", "full"]), default="sampled",
              show_default=True)
@click.option("--figure", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", help="Picture (png, svg or pdf) [default: OUT_DIR/figures.png].")
@_rows_option("Train and draw only these settings (mgnm, L0..L4, K1..K8, wo-maxpool), so "
              "separate processes can share the figures; [default: all].")
@click.option("--report-only", is_flag=True,
              help="Train nothing: draw the settings whose runs have all finished, and "
                   "name the others.")
@user_errors
def figures(data: str, seeds: int | None, epochs: int | None, patience: int | None,
            quick: bool, out_dir: Path, markdown: Path | None, device: str,
            threads: int | None, progress: bool, metric: str, protocol: str,
            figure: Path | None, rows: list[str] | None, report_only: bool) -> None:
    """Figures 3 (against L = 0..4), 4 (against K = 1..8) and 7 (max vs sum pooling)."""
    from mgnm_pyg.experiments import reproduce as rp
    from mgnm_pyg.experiments import variants as rv
    from mgnm_pyg.insight.figures import save_figure

    plan = _plan(data, seeds, epochs, patience, quick, out_dir, device, threads, progress,
                 report_only)
    grids = ((rv.QUICK_FIGURE_LAYERS, rv.QUICK_FIGURE_INTERESTS) if quick
             else (rv.FIGURE_LAYERS, rv.FIGURE_INTERESTS))
    fig, report = rp.reproduce_figures(plan, metric, protocol, *grids, echo=click.echo,
                                       rows=rows)
    stem = _stem("figures", rows)
    path = figure if figure is not None else out_dir / f"{stem}.png"
    fmt = path.suffix.lstrip(".").lower()
    save_figure(fig, path, fmt if fmt in ("png", "svg", "pdf") else "png")
    report["markdown"] += f"\nPicture: {path}\n"
    _write(report, out_dir, stem, markdown)
