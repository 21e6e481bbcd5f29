"""The training loop: per-epoch negatives, validation, early stopping, checkpoints, resume.

Everything random is derived from ``(seed, epoch)``: the model is initialised after
``torch.manual_seed(seed)``, the training negatives of epoch ``e`` come from
``np.random.default_rng([seed, e])``, the batch order from the sampler seeded with
``seed`` and ``set_epoch(e)``, and torch's generator is reseeded from ``(seed, e)`` at the
start of every epoch. So resuming from ``last.pt`` after epoch ``e`` replays epochs
``e+1..`` exactly as an uninterrupted run would (on the CPU).

The best checkpoint and early stopping use the validation split only (the authors' code
selects on the test split; this one does not).

On CUDA nothing waits for the GPU per step: the batch copies are asynchronous and the
loss is read every :data:`LOSS_CHECK_EVERY` steps (the NaN check still names the exact
step). ``--amp`` and ``--compile`` are in :mod:`~mgnm_pyg.training.acceleration`; they
change the numerics, so a resumed run keeps them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mgnm_pyg.data.split_checks import require_records
from mgnm_pyg.errors import MGNMError
from mgnm_pyg.files import atomic_write_json, atomic_write_jsonl
from mgnm_pyg.training import acceleration, distributed
from mgnm_pyg.training.build import build_model, load_data, resolve_device
from mgnm_pyg.training.checkpoint import (
    check_dataset,
    checkpoint_path,
    dataset_fingerprint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from mgnm_pyg.training.config import TrainConfig, config_from_dict
from mgnm_pyg.training.evaluation import evaluate, metric_names
from mgnm_pyg.training.schedule import set_learning_rate
from mgnm_pyg.training.shared_negatives import SharedNegativeSampler
from mgnm_pyg.training.step import train_step
from mgnm_pyg.training.stopping import ONE_PASS_MODELS, improves, stops_after

# Settings that may change when a run is resumed; the others define the run.
RESUMABLE_CHANGES = ("epochs", "patience", "device", "eval_batch_size", "eval_full",
                     "eval_per_user")
# The loss is read on the host (finiteness check, progress bar) every this many steps
# and at the end of the epoch: a read waits for the GPU, so not every step.
LOSS_CHECK_EVERY = 50
# What each split is needed for; an empty one stops the run before its first epoch.
SPLIT_PURPOSES = (("train", "train"), ("valid", "select the best epoch"),
                  ("test", "report test metrics"))
VALID_KS = (5,)
TEST_KS = (5, 10, 20)


class TrainingError(MGNMError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


class TrainingInterrupted(MGNMError):
    """Training was stopped by the user (Ctrl-C); the message says how to resume."""


@dataclass
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    history: list[dict[str, Any]]
    best_epoch: int
    best_valid: dict[str, float]
    test_metrics: dict[str, dict[str, float]]


def default_run_dir(config: TrainConfig, root: str | Path = "runs") -> Path:
    """``runs/<data>-<YYYYmmdd-HHMMSS>``, with the data spec made filename-safe."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(config.data).name or config.data).strip("-")
    return Path(root) / f"{name or 'data'}-{datetime.now():%Y%m%d-%H%M%S}"


class Trainer:
    """Trains one run in ``run_dir``; see the module docstring for the guarantees.

    Files written (all atomically): ``config.json``, ``checkpoints/best.pt``,
    ``checkpoints/last.pt``, ``metrics.jsonl`` (one line per epoch) and
    ``test_metrics.json`` (best checkpoint, sampled and full protocols).
    """

    def __init__(self, config: TrainConfig, run_dir: str | Path, dataset: Any = None,
                 progress: bool = True, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        # under torchrun only rank 0 prints and writes (training/distributed.py)
        self.device = distributed.setup(resolve_device(config.device))
        self.progress = progress and distributed.is_main()
        self.echo = echo if distributed.is_main() else lambda _: None
        self.dataset = dataset if dataset is not None else load_data(config)
        self.fingerprint = dataset_fingerprint(self.dataset)
        self.model = build_model(config, self.dataset).to(self.device)
        if config.compile:
            acceleration.compile_encode(self.model, warn=self.echo)
        # A model without trainable parameters (popularity) takes no optimiser steps.
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=config.lr) if params else None
        self.shared_negatives = (SharedNegativeSampler(self.dataset, config, self.device)
                                 if config.loss == "sampled-softmax" else None)
        self.loss_module = distributed.wrap_model(self.model, self.device)
        self.epoch = 0  # completed epochs
        self.epoch_parts: dict[str, float] = {}  # per-row loss parts of the last epoch
        self.state: dict[str, Any] = {"best_metric": None, "best_epoch": 0, "bad_epochs": 0,
                                      "history": []}
        self._header_printed = False
        # Called with each finished epoch's row, after metrics.jsonl is written.
        self.epoch_hooks: list[Callable[[dict[str, Any]], None]] = []

    @property
    def best_path(self) -> Path:
        return checkpoint_path(self.run_dir, "best.pt")

    @property
    def last_path(self) -> Path:
        return checkpoint_path(self.run_dir, "last.pt")

    # ------------------------------------------------------------------ resume
    @classmethod
    def resume(cls, run_dir: str | Path, changes: dict[str, Any] | None = None,
               progress: bool = True, echo: Callable[[str], None] = print) -> Trainer:
        """Continue the run in ``run_dir`` from ``checkpoints/last.pt``.

        ``changes`` may only touch :data:`RESUMABLE_CHANGES`; anything else would make
        the resumed run a different run, so it is refused.
        """
        run_dir = Path(run_dir)
        last = checkpoint_path(run_dir, "last.pt")
        if not last.exists():
            raise MGNMError(f"--resume {run_dir}: no completed epoch to resume from ({last} "
                            f"is missing); start the run again with --out")
        ckpt = load_checkpoint(last)
        config = config_from_dict(ckpt["config"], where=str(last))
        changes = changes or {}
        fixed = sorted(k for k, v in changes.items()
                       if k not in RESUMABLE_CHANGES and getattr(config, k) != v)
        if fixed:
            raise MGNMError(
                f"--resume {run_dir}: cannot change {', '.join(fixed)} of an existing run "
                f"(only {', '.join(RESUMABLE_CHANGES)} may change)"
            )
        config = config.replace(**{k: v for k, v in changes.items() if k in RESUMABLE_CHANGES})
        trainer = cls(config, run_dir, progress=progress, echo=echo)
        check_dataset(ckpt, trainer.dataset, last)
        load_model_state(trainer.model, ckpt, last)
        if ckpt.get("optimizer") is not None and trainer.optimizer is not None:
            trainer.optimizer.load_state_dict(ckpt["optimizer"])
        trainer.epoch = int(ckpt["epoch"])
        trainer.state = dict(ckpt["state"])
        return trainer

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, epoch: int) -> float:
        """One pass over the training records; returns the loss per row (a (record,
        candidate) pair under ``bce``, a record under ``softmax``). The per-row mean of
        each part of the loss (its terms, and MGNM's per-level BCE) is left in
        :attr:`epoch_parts` (``train_parts`` in ``metrics.jsonl``)."""
        from mgnm_pyg.data.collate import dense_batch
        from mgnm_pyg.data.negatives import sample_training_negatives
        from mgnm_pyg.data.sampler import LengthBucketSampler

        cfg, data = self.config, self.dataset
        records = data.records["train"]
        negatives = sample_training_negatives(
            data, records, cfg.negatives, np.random.default_rng([cfg.seed, epoch]))
        sampler = LengthBucketSampler(data.history_lengths(records, cfg.max_len),
                                      cfg.batch_size, shuffle=True, seed=cfg.seed)
        sampler.set_epoch(epoch)
        if self.shared_negatives is not None:
            self.shared_negatives.start_epoch(epoch, len(sampler))
        # Reseed torch per epoch so any randomness inside the model replays on resume.
        torch.manual_seed(int(np.random.default_rng([cfg.seed, epoch, 1]).integers(2**62)))

        self.model.train()
        window: list[tuple[torch.Tensor, float]] = []  # (loss, rows) since the last check
        part_sums: dict[str, torch.Tensor] = {}  # on the device: read once, at the end
        part_rows = 0
        total_loss, total_rows, seen = 0.0, 0.0, 0
        start = time.perf_counter()
        bar = tqdm(total=len(sampler), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        try:
            for step, index in enumerate(sampler, start=1):
                index, weight = distributed.batch_slice(index)  # this rank's records
                batch = dense_batch(data, records, index, cfg.max_len)
                shared = (None if self.shared_negatives is None
                          else self.shared_negatives.batch(step))
                set_learning_rate(self.optimizer, cfg, (epoch - 1) * len(sampler) + step,
                                  len(sampler))
                loss, parts, rows = train_step(self.loss_module, self.optimizer, batch,
                                               negatives[index], cfg, self.device, weight,
                                               shared)
                for name, value in parts.items():
                    part_sums[name] = part_sums.get(name, 0.0) + value.double() * rows
                part_rows += rows
                window.append((loss.detach(), rows * weight))
                seen += len(index)
                bar.update(1)
                if step % LOSS_CHECK_EVERY == 0 or step == len(sampler):
                    for at, (value, n) in enumerate(distributed.step_losses(window)):
                        if not math.isfinite(value):
                            raise TrainingError(
                                f"the training loss is {value} at epoch {epoch}, step "
                                f"{step - len(window) + 1 + at} of {len(sampler)}; training "
                                f"stopped. The last good checkpoint is {self.last_path} "
                                f"(epoch {self.epoch}); try a lower --lr.")
                        total_loss += value
                        total_rows += n
                    window.clear()
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{total_loss / max(total_rows, 1):.4f}",
                                    rec_s=f"{rate:.0f}")
        finally:
            bar.close()
        self.epoch_parts = distributed.loss_part_means(part_sums, part_rows)
        return total_loss / max(total_rows, 1)

    # ------------------------------------------------------------------ the run
    def _save(self, path: Path) -> None:
        if not distributed.is_main():
            return
        save_checkpoint(path, model=self.model, config=self.config.to_dict(),
                        dataset=self.fingerprint, epoch=self.epoch,
                        optimizer=self.optimizer, state=self.state)

    def _write_metrics_log(self) -> None:
        if not distributed.is_main():
            return
        atomic_write_jsonl(self.run_dir / "metrics.jsonl", self.state["history"])

    def _print_row(self, row: dict[str, Any], best: bool) -> None:
        names = metric_names(row["valid"])
        if not self._header_printed:
            self.echo("epoch  train_loss  " + "  ".join(f"{n:>8}" for n in names) + "     time")
            self._header_printed = True
        cells = "  ".join(f"{row['valid'][n]:8.4f}" for n in names)
        mark = "  *best" if best else ""
        self.echo(f"{row['epoch']:5d}  {row['train_loss']:10.5f}  {cells}  "
                  f"{row['timing']['seconds']:6.1f}s{mark}")

    def fit(self, test: bool = True,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
        """Train until ``epochs`` or early stopping, then test the best checkpoint.

        ``test=False`` leaves the test split alone (no ``test_metrics.json``, an empty
        ``test_metrics``), for a hyper-parameter search that selects on validation only.
        ``on_epoch(row)`` gets each epoch's ``metrics.jsonl`` row once its checkpoints are
        saved; an exception it raises (a pruned trial) ends training there.
        """
        for split, purpose in SPLIT_PURPOSES:
            if test or split != "test":
                require_records(self.dataset, split, purpose)
        if distributed.is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "config.json",
                              {**self.config.to_dict(), "dataset_fingerprint": self.fingerprint})
        self._write_metrics_log()
        finished = False
        try:
            self._run_epochs(on_epoch)
            result = self.test() if test else self.result({})
            finished = True
            return result
        except KeyboardInterrupt:
            raise TrainingInterrupted(
                f"interrupted during epoch {self.epoch + 1}; {self.epoch} completed epoch(s) "
                f"are saved in {self.last_path}. Resume with: "
                f"mgnm-pyg train --resume {self.run_dir}"
            ) from None
        finally:
            # Release the DDP wrapper while its process group is alive: destroyed later
            # (when the trainer is freed), it could wait on a peer that has exited.
            self.loss_module = None
            distributed.teardown(synchronize=finished)
            self.loss_module = distributed.wrap_model(self.model, self.device)

    def _run_epochs(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        cfg = self.config
        while not stops_after(cfg, self.epoch, self.state["bad_epochs"]):
            epoch = self.epoch + 1
            start = time.perf_counter()
            loss = self.train_epoch(epoch)
            train_seconds = time.perf_counter() - start
            valid = evaluate(self.model, self.dataset, "valid", "sampled", VALID_KS, cfg,
                             self.device)
            if cfg.select_metric not in valid:
                raise TrainingError(f"validation returned no {cfg.select_metric!r} "
                                    f"(got {', '.join(valid)})")
            # Wall times (training pass, and training plus validation) are the only
            # fields a resumed run may not reproduce.
            row = {"epoch": epoch, "train_loss": loss, "train_parts": self.epoch_parts,
                   "valid": valid,
                   "timing": {"train_seconds": round(train_seconds, 3),
                              "seconds": round(time.perf_counter() - start, 3)}}
            self.epoch = epoch
            self.state["history"].append(row)
            metric = valid[cfg.select_metric]
            best = improves(metric, self.state["best_metric"])
            if best:
                self.state.update(best_metric=metric, best_epoch=epoch, bad_epochs=0)
            else:
                self.state["bad_epochs"] += 1
            # best first, then last: a crash in between only repeats this epoch on resume.
            if best:
                self._save(self.best_path)
            self._save(self.last_path)
            self._write_metrics_log()
            for hook in self.epoch_hooks:
                hook(row)
            self._print_row(row, best)
            if on_epoch is not None:
                on_epoch(row)
        if cfg.model in ONE_PASS_MODELS:
            self.echo(f"{cfg.model} has no trainable parameters: fitted by one pass over the "
                      f"training records and validated once")
        elif self.state["bad_epochs"] >= cfg.patience:
            self.echo(f"early stop: no {cfg.select_metric} improvement for "
                      f"{cfg.patience} epoch(s)")

    def test(self) -> TrainResult:
        """Evaluate ``best.pt`` on the test split (sampled, and full if asked)."""
        cfg = self.config
        if not self.state["best_epoch"]:
            raise TrainingError(
                f"no epoch had a finite validation {cfg.select_metric} (all NaN), so there is "
                f"no best checkpoint to test; see {self.run_dir / 'metrics.jsonl'}")
        if distributed.is_main():  # the other ranks get rank 0's weights
            load_model_state(self.model, load_checkpoint(self.best_path), self.best_path)
        distributed.broadcast_module(self.model)
        results, seconds = {}, {}
        for protocol in ("sampled", "full") if cfg.eval_full else ("sampled",):
            start = time.perf_counter()
            results[protocol] = evaluate(self.model, self.dataset, "test", protocol, TEST_KS,
                                         cfg, self.device, progress=self.progress,
                                         per_user=cfg.eval_per_user)
            seconds[protocol] = time.perf_counter() - start
        best_epoch = int(self.state["best_epoch"])
        if distributed.is_main():
            atomic_write_json(self.run_dir / "test_metrics.json",
                              {"best_epoch": best_epoch, "select_metric": cfg.select_metric,
                               **results})
        self.echo(f"test metrics of the best epoch ({best_epoch}):")
        for protocol, metrics in results.items():
            cells = "  ".join(f"{k}={metrics[k]:.4f}" for k in metric_names(metrics))
            self.echo(f"  {protocol:>7}: {cells}  ({seconds[protocol]:.1f}s)")
        self.echo(f"run saved in {self.run_dir}")
        return self.result(results)

    def result(self, test_metrics: dict[str, dict[str, float]]) -> TrainResult:
        """The run so far: its history, best epoch and that epoch's validation metrics."""
        history = self.state["history"]
        best_epoch = int(self.state["best_epoch"])
        best_valid = next((r["valid"] for r in history if r["epoch"] == best_epoch), {})
        return TrainResult(self.run_dir, history, best_epoch, best_valid, test_metrics)
