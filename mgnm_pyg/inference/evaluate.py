"""Evaluating a saved run's checkpoint on a split, as ``mgnm-pyg evaluate`` does."""

from __future__ import annotations

from pathlib import Path

from mgnm_pyg.files import atomic_write_json
from mgnm_pyg.training.evaluation import evaluate
from mgnm_pyg.training.saved_run import LoadedRun


def evaluate_run(run: LoadedRun, split: str = "test", protocol: str = "sampled",
                 ks: tuple[int, ...] = (5,), batch_size: int | None = None,
                 progress: bool = False, agreement_users: int = 0
                 ) -> tuple[dict[str, float], Path]:
    """Metrics of the run's model on ``split``, also written to ``eval_<split>_<protocol>.json``.

    ``agreement_users > 0`` adds ``ranking_agreement``
    (:func:`~mgnm_pyg.insight.personalization.ranking_agreement` over that many users).
    """
    config = run.config if batch_size is None else run.config.replace(eval_batch_size=batch_size)
    metrics = evaluate(run.model, run.dataset, split, protocol, ks, config, run.device,
                       progress=progress)
    if agreement_users:
        from mgnm_pyg.insight.personalization import ranking_agreement

        metrics["ranking_agreement"] = ranking_agreement(
            run.model, run.dataset, split, n_users=agreement_users, max_len=config.max_len,
            seed=config.seed, device=run.device)
    out = run.run_dir / f"eval_{split}_{protocol}.json"
    atomic_write_json(out, {"checkpoint": str(run.checkpoint_path), "epoch": run.epoch,
                            "data": run.config.data, "split": split, "protocol": protocol,
                            "metrics": metrics})
    return metrics, out
