"""Evaluating a saved run's checkpoint on a split, as ``mgnm-pyg evaluate`` does."""

from __future__ import annotations

from pathlib import Path

from mgnm_pyg.files import atomic_write_json
from mgnm_pyg.training.evaluation import evaluate
from mgnm_pyg.training.saved_run import LoadedRun


def evaluate_run(run: LoadedRun, split: str = "test", protocol: str = "sampled",
                 ks: tuple[int, ...] = (5,), batch_size: int | None = None,
                 progress: bool = False, agreement_users: int = 0, per_user: bool = False
                 ) -> tuple[dict[str, float], Path]:
    """Metrics of the run's model on ``split``, also written to ``eval_<split>_<protocol>.json``.

    An empty ``split`` raises :class:`~mgnm_pyg.data.split_checks.EmptySplitError`.
    ``agreement_users > 0`` adds ``ranking_agreement``
    (:func:`~mgnm_pyg.insight.personalization.ranking_agreement` over that many users).
    """
    from mgnm_pyg.data.split_checks import require_records

    require_records(run.dataset, split, "evaluate")
    config = run.config if batch_size is None else run.config.replace(eval_batch_size=batch_size)
    metrics = evaluate(run.model, run.dataset, split, protocol, ks, config, run.device,
                       progress=progress, per_user=per_user)
    if agreement_users:
        from mgnm_pyg.inference.agreement import measure

        value = measure(run.model, run.dataset, split, agreement_users, config.max_len,
                        config.seed, run.device, progress)
        if value is not None:  # None: fewer than 2 users to compare
            metrics["ranking_agreement"] = value
    out = run.run_dir / f"eval_{split}_{protocol}.json"
    atomic_write_json(out, {"checkpoint": str(run.checkpoint_path), "epoch": run.epoch,
                            "data": run.config.data, "split": split, "protocol": protocol,
                            "metrics": metrics})
    return metrics, out
