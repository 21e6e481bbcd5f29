"""The ranking agreement reported at the end of ``train`` and ``evaluate``.

A model can reach popularity-level accuracy while giving every user the same item
order; :func:`~mgnm_pyg.insight.personalization.ranking_agreement` over a seeded sample of users
shows it in a few seconds. Above :data:`SAME_RANKING` the commands say so in plain words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mgnm_pyg.files import atomic_write_json

AGREEMENT_USERS = 200  # users drawn (with the run's seed) from the split
SAME_RANKING = 0.95


def measure(model: Any, dataset: Any, split: str, n_users: int, max_len: int, seed: int,
            device: Any, progress: bool = False) -> float | None:
    """The mean Spearman correlation between the full rankings of ``n_users`` users of
    ``split``; None when the split has fewer than 2 users (nothing to compare)."""
    from mgnm_pyg.insight.personalization import ranking_agreement

    if len(set(dataset.records[split].users.tolist())) < 2 or dataset.n_items < 2:
        return None
    return ranking_agreement(model, dataset, split, n_users=n_users, max_len=max_len,
                             seed=seed, device=device, progress=progress)


def describe(value: float | None, n_users: int, split: str, model: str) -> list[str]:
    """Lines for the user: the value, and a warning when the rankings are nearly the same."""
    if value is None:
        return [f"ranking agreement: not measured ({split} split has fewer than 2 users)"]
    lines = [f"ranking agreement of {n_users} {split} users: {value:.3f} (1 = every user gets "
             f"the same item order, near 0 = unrelated orders)"]
    if value > SAME_RANKING and model != "pop":
        lines.append(f"Warning: this model gives nearly every user the same ranking, like "
                     f"popularity (agreement {value:.3f} > {SAME_RANKING}); its accuracy "
                     f"does not come from personal recommendations.")
    return lines


def report_run(run_dir: str | Path, model: Any, dataset: Any, config: Any, device: Any,
               n_users: int = AGREEMENT_USERS, split: str = "test",
               progress: bool = False) -> list[str]:
    """Measure a trained run, write ``RUN_DIR/personalization.json`` and return the
    lines to show."""
    value = measure(model, dataset, split, n_users, config.max_len, config.seed, device,
                    progress)
    users = min(n_users, len(set(dataset.records[split].users.tolist())))
    atomic_write_json(Path(run_dir) / "personalization.json",
                      {"split": split, "users": users, "seed": config.seed,
                       "ranking_agreement": value, "same_ranking_above": SAME_RANKING})
    return describe(value, users, split, config.model)
