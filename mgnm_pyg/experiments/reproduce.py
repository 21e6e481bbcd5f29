"""The paper's Tables 2 and 3 and Figures 3, 4 and 7 as sets of training runs.

Tian et al., "When Multi-Level Meets Multi-Interest: A Multi-Grained Neural Model for
Sequential Recommendation", SIGIR 2022. Every (table, variant, seed) is one
:class:`~mgnm_pyg.training.trainer.Trainer` run in ``OUT/<table>/<variant>-seed<s>``; a
finished run (``test_metrics.json``) is reused, an interrupted one resumed from
``checkpoints/last.pt``. The markdown and the p-values are made by
:mod:`mgnm_pyg.experiments.report`; the rows themselves are defined in
:mod:`mgnm_pyg.experiments.variants`.

The reference MGNM (SPEC defaults, L=3, K=4, max-pooling) is trained once, in
``table2/mgnm-seed<s>``: Table 3's full model and the figures' L=3 / K=4 points reuse it,
and Figure 7's sum-pooled runs are Table 3's "w/o MaxPool" runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.experiments.variants import (
    FIGURE_INTERESTS,
    FIGURE_LAYERS,
    QUICK_EPOCHS,
    QUICK_SETTINGS,
    REFERENCE_VARIANT,
    Variant,
    figure_variants,
    pick_rows,
    select_rows,
)
from mgnm_pyg.files import LockHeld, process_lock
from mgnm_pyg.training.config import TrainConfig, config_from_dict

Echo = Callable[[str], None]


@dataclass
class Plan:
    """Settings shared by every run of one command."""

    data: str
    seeds: list[int]
    out_dir: Path
    epochs: int | None = None
    patience: int | None = None  # None: the train default
    quick: bool = False
    device: str = "auto"
    progress: bool = False
    report_only: bool = False  # tables: report the rows whose runs all finished, train none

    def config(self, variant: Variant, seed: int) -> TrainConfig:
        values: dict[str, Any] = {"data": self.data, "device": self.device, "seed": seed}
        if self.quick:
            values.update(QUICK_SETTINGS, epochs=QUICK_EPOCHS)
        if self.epochs is not None:
            values["epochs"] = self.epochs
        if self.patience is not None:
            values["patience"] = self.patience
        return TrainConfig(**{**values, **variant.overrides})

    def reference(self) -> TrainConfig:
        """The reference MGNM's settings (first seed)."""
        return self.config(REFERENCE_VARIANT, self.seeds[0])

    def run_dir(self, table: str, variant: Variant, seed: int) -> Path:
        return self.out_dir / (variant.home or table) / f"{variant.name}-seed{seed}"


def _defining(config: dict[str, Any]) -> dict[str, Any]:
    from mgnm_pyg.training.saved_run import RESUMABLE_CHANGES

    return {k: v for k, v in config.items() if k not in RESUMABLE_CHANGES}


def _check_same_run(run_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """The saved ``config.json``, after checking it defines the run asked for."""
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MGNMError(f"{path}: cannot read the run's settings ({exc})") from exc
    saved.pop("dataset_fingerprint", None)
    saved = config_from_dict(saved, where=str(path)).to_dict()
    want, have = _defining(config.to_dict()), _defining(saved)
    diff = sorted(k for k in want if want[k] != have.get(k))
    if diff:
        cells = ", ".join(f"{k}={have.get(k)!r} (asked {want[k]!r})" for k in diff)
        raise MGNMError(f"{run_dir} holds a different run: {cells}; use another --out-dir "
                        f"or delete the folder")
    return saved


class RunCache:
    """Trains, resumes or reuses runs; loads each dataset once."""

    def __init__(self, plan: Plan, echo: Echo = print) -> None:
        self.plan, self.echo = plan, echo
        self.datasets: dict[tuple, Any] = {}
        # Disjoint: a run that ran longer than the asked stopping rule is "reused_longer".
        self.counts = {"trained": 0, "resumed": 0, "continued": 0, "reused": 0,
                       "reused_longer": 0, "skipped": 0}
        self.seen: dict[Path, dict[str, Any]] = {}  # runs met earlier in this command
        # Rows left out of the report (runs not finished, or skipped): label -> "k of n runs"
        self.unfinished: dict[str, str] = {}

    def _dataset(self, config: TrainConfig) -> Any:
        from mgnm_pyg.training.build import load_data

        loaded = len(self.datasets)
        dataset = load_data(config, self.datasets)
        if len(self.datasets) > loaded:  # a dataset met for the first time
            options = dataset.card.get("options", {})
            if (options.get("split"), options.get("n_eval_negatives")) != ("per-user", 1000):
                self.echo(f"note: {config.data} is split {options.get('split')!r} with "
                          f"{options.get('n_eval_negatives')} evaluation negatives; the "
                          f"paper's protocol is per-user 7:1:2 with 1000")
        return dataset

    def ensure(self, run_dir: Path, config: TrainConfig, what: str) -> dict[str, Any] | None:
        """The run's ``test_metrics.json``, training or resuming the run first if needed;
        None when another process is training it (the run is skipped, not waited for, so
        several identical commands share a table's runs)."""
        from mgnm_pyg.training.stopping import stop_epoch

        if run_dir in self.seen:
            return self.seen[run_dir]
        metrics_path = run_dir / "test_metrics.json"
        stop = None
        if metrics_path.is_file():
            _check_same_run(run_dir, config)
            stop = stop_epoch(run_dir, config)
        if stop is not None:
            done, _ = epoch_log(run_dir)
            self.counts["reused" if stop == done else "reused_longer"] += 1
            note = ""
            if stop != done:
                note = (f"; it ran {done} epochs, longer than epochs={config.epochs}, "
                        f"patience={config.patience} allow (they stop it after epoch "
                        f"{stop}): reused as it is, not cut back")
            self.echo(f"{what}: done already ({run_dir}{note})")
        else:
            # The lock keeps two commands sharing OUT_DIR off the same run; the second
            # check sees a run another process finished while this one was waiting.
            try:
                with process_lock(run_dir / ".training.lock", f"{run_dir} is being trained"):
                    if not metrics_path.is_file() or stop_epoch(run_dir, config) is None:
                        self._train(run_dir, config, what)
            except LockHeld as exc:
                self.counts["skipped"] += 1
                self.echo(f"{what}: skipped, process {exc.pid} is training it")
                return None
        try:
            self.seen[run_dir] = json.loads(metrics_path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MGNMError(f"{metrics_path}: not a readable test_metrics.json ({exc})") from exc
        return self.seen[run_dir]

    def _train(self, run_dir: Path, config: TrainConfig, what: str) -> None:
        """Train ``run_dir`` from scratch, or resume it from ``checkpoints/last.pt``."""
        from mgnm_pyg.errors import TrainingInterrupted
        from mgnm_pyg.training.checkpoint import checkpoint_path
        from mgnm_pyg.training.saved_run import RESUMABLE_CHANGES
        from mgnm_pyg.training.trainer import Trainer

        if checkpoint_path(run_dir, "last.pt").is_file():
            _check_same_run(run_dir, config)
            changes = {k: getattr(config, k) for k in RESUMABLE_CHANGES}
            trainer = Trainer.resume(run_dir, changes, progress=self.plan.progress,
                                     echo=self.echo)
            if (run_dir / "test_metrics.json").is_file():  # finished, see stop_epoch
                self.counts["continued"] += 1
                self.echo(f"{what}: continuing {run_dir} after epoch {trainer.epoch} (it "
                          f"stopped before epochs={config.epochs}, patience="
                          f"{config.patience} would have stopped it)")
            else:
                self.counts["resumed"] += 1
                self.echo(f"{what}: resuming {run_dir} after epoch {trainer.epoch}")
        else:
            trainer = Trainer(config, run_dir, dataset=self._dataset(config),
                              progress=self.plan.progress, echo=self.echo)
            self.counts["trained"] += 1
            self.echo(f"{what}: training in {run_dir}")
        start = time.perf_counter()
        try:
            trainer.fit()
        except TrainingInterrupted as exc:
            raise TrainingInterrupted(f"{exc}; running this command again resumes it as "
                                      f"well") from None
        self.echo(f"{what}: finished in {time.perf_counter() - start:.1f}s")


def epoch_log(run_dir: Path) -> tuple[int, float]:
    """(epochs run, their seconds of training and validation) from ``metrics.jsonl``."""
    from mgnm_pyg.training.saved_run import read_epoch_log

    rows = read_epoch_log(run_dir)
    return len(rows), float(sum(r.get("timing", {}).get("seconds", 0.0) for r in rows))


def run_variants(table: str, variants: list[Variant], plan: Plan, cache: RunCache
                 ) -> dict[str, Any]:
    """Every (variant, seed) run of ``table``: their test metrics and folders."""
    results: dict[str, Any] = {}
    total = len(variants) * len(plan.seeds)
    done = 0
    for variant in variants:
        runs = []
        for seed in plan.seeds:
            done += 1
            run_dir = plan.run_dir(table, variant, seed)
            what = f"[{table} {done}/{total}] {variant.label} seed {seed}"
            if plan.report_only and not (run_dir / "test_metrics.json").is_file():
                continue
            metrics = cache.ensure(run_dir, plan.config(variant, seed), what)
            if metrics is None:  # another process is training it
                continue
            epochs, seconds = epoch_log(run_dir)
            runs.append({"seed": seed, "run_dir": str(run_dir), "test": metrics,
                         "epochs": epochs, "epoch_seconds": seconds})
        if len(runs) < len(plan.seeds):  # a row is shown only with all its seeds
            cache.unfinished[variant.label] = f"{len(runs)} of {len(plan.seeds)} runs"
            continue
        results[variant.name] = {"label": variant.label, "runs": runs}
    return results


def reproduce_table(table: str, plan: Plan, echo: Echo = print,
                    rows: list[str] | None = None) -> dict[str, Any]:
    """Train (or reuse) the runs of Table 2 or 3 (only ``rows``, when given); the report of
    :func:`~mgnm_pyg.experiments.report.table_report`."""
    from mgnm_pyg.experiments.report import table_report

    variants = select_rows(table, rows)
    start = time.perf_counter()
    cache = RunCache(plan, echo)
    results = run_variants(table, variants, plan, cache)
    if not results:
        raise MGNMError(f"no row of {table} has all its runs finished in {plan.out_dir} yet "
                        f"({', '.join(f'{k}: {v}' for k, v in cache.unfinished.items())})")
    return table_report(table, plan, results, time.perf_counter() - start, cache.counts,
                        cache.unfinished)


def reproduce_figures(plan: Plan, metric: str = "ndcg@5", protocol: str = "sampled",
                      layers: tuple[int, ...] = FIGURE_LAYERS,
                      interests: tuple[int, ...] = FIGURE_INTERESTS,
                      echo: Echo = print, rows: list[str] | None = None
                      ) -> tuple[Any, dict[str, Any]]:
    """Figures 3, 4 and 7 in one picture of :func:`~mgnm_pyg.insight.charts.compare_figure`.

    Figure 7 re-evaluates each max-pooled and each sum-pooled run with the other pooling
    (:func:`~mgnm_pyg.insight.arrays.pooling_comparison`), so both trainings are compared
    under both poolings. ``rows`` (names such as ``mgnm``, ``L0``, ``K8``,
    ``wo-maxpool``) keeps only those settings, to share the runs between processes.
    Returns (figure, report).
    """
    from mgnm_pyg.experiments.report import figure_report
    from mgnm_pyg.insight.arrays import pooling_comparison, run_summary
    from mgnm_pyg.insight.charts import compare_figure

    start = time.perf_counter()
    cache = RunCache(plan, echo)
    grid, pooled = figure_variants(layers, interests)
    kept = {v.name for v in pick_rows(grid + pooled, rows, "the figures")}
    grid, pooled = [v for v in grid if v.name in kept], [v for v in pooled if v.name in kept]
    grid_runs = run_variants("figures", grid, plan, cache)
    pooled_runs = run_variants("figures", pooled, plan, cache)
    if not grid_runs and not pooled_runs:
        missing = ", ".join(f"{k}: {v}" for k, v in cache.unfinished.items())
        raise MGNMError(f"no setting of the figures has all its runs finished in "
                        f"{plan.out_dir} yet ({missing})")
    rows = [run_summary(r["run_dir"], metric, protocol)
            for v in grid_runs.values() for r in v["runs"]]
    pooling = {}
    for name, variant in pooled_runs.items():  # "setting" groups Figure 7's seeds
        for r in variant["runs"]:
            pooling[r["run_dir"]] = {"setting": name, **pooling_comparison(
                r["run_dir"], metric, protocol, plan.device, cache.datasets)}
    fig = compare_figure(rows, pooling, metric, protocol)
    seconds_by_run = {r["run_dir"]: r["epoch_seconds"] for group in (grid_runs, pooled_runs)
                      for v in group.values() for r in v["runs"]}
    epoch_total = sum(seconds_by_run.values())
    report = figure_report(plan, metric, protocol, rows, pooling,
                           time.perf_counter() - start, cache.counts, epoch_total,
                           cache.unfinished)
    return fig, report
