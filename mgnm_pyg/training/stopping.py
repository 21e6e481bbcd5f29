"""The stopping rule of a run (epochs, patience on validation), and its replay on a
finished run's ``metrics.jsonl``."""

from __future__ import annotations

import math
from pathlib import Path

from mgnm_pyg.errors import MGNMError
from mgnm_pyg.training.config import TrainConfig
from mgnm_pyg.training.saved_run import read_epoch_log

#: Models with nothing to train: fitted by one pass over the training records.
ONE_PASS_MODELS = ("pop",)


def stops_after(config: TrainConfig, epochs_done: int, bad_epochs: int) -> bool:
    """The stopping rule: ``config.epochs`` epochs done, or ``config.patience`` epochs
    since the last better validation ``select_metric`` (``bad_epochs``), or one epoch of
    a model with nothing to train (:data:`ONE_PASS_MODELS`)."""
    if config.model in ONE_PASS_MODELS and epochs_done >= 1:
        return True
    return epochs_done >= config.epochs or bad_epochs >= config.patience


def improves(value: float, best: float | None) -> bool:
    """Whether a validation ``value`` is a new best: strictly above ``best`` (None: the
    first epoch). A tie is a bad epoch for :func:`stops_after`; NaN is never a best."""
    if math.isnan(value):
        return False
    return best is None or math.isnan(best) or value > best


def stop_epoch(run_dir: str | Path, config: TrainConfig) -> int | None:
    """The epoch after which ``config``'s stopping rule (``epochs``, ``patience`` on
    validation ``select_metric``, as in the trainer) ends the finished run in
    ``run_dir``, replayed on its ``metrics.jsonl``; None when the rule would go on.

    None means the run stopped sooner than ``config`` would stop it: only the stopping
    rule differs, so resuming it from ``checkpoints/last.pt`` gives the run ``config``
    trains from the start (this is how ``mgnm-pyg reproduce --patience`` continues
    finished runs instead of retraining them).
    """
    best_value, best_epoch = None, 0
    for row in read_epoch_log(run_dir):
        epoch = int(row["epoch"])
        try:
            value = float(row["valid"][config.select_metric])
        except (KeyError, TypeError, ValueError) as exc:
            raise MGNMError(f"{Path(run_dir) / 'metrics.jsonl'}: epoch {epoch} has no validation "
                            f"{config.select_metric} ({exc!r})") from exc
        if improves(value, best_value):
            best_value, best_epoch = value, epoch
        if stops_after(config, epoch, epoch - best_epoch):
            return epoch
    return None
