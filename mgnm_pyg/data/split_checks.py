"""Checks of the split sizes: empty or tiny validation and test splits.

An empty split gives no metric at all (every mean over zero records is NaN), and a
split of a handful of records gives metrics that are mostly noise. ``prepare`` warns
about both; training and evaluation refuse an empty split they must select or report
on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mgnm_pyg.errors import MGNMError

# Fewer evaluation records than this and a metric moves by 5 points or more per record.
TINY_SPLIT = 20

_ROLE = {"train": "training", "valid": "validation", "test": "testing"}
_ADVICE = ("each user needs several interactions for a record to reach it (per-user 7:1:2: "
           "6 or more interactions; leave-one-out: 4 or more); prepare more data, or use "
           "--split leave-one-out")


class EmptySplitError(MGNMError):
    """A split that a command must select or report on has no records."""


def split_sizes(dataset: Any) -> dict[str, int]:
    """Number of records of each split of a prepared dataset."""
    return {name: len(records) for name, records in dataset.records.items()}


def split_warnings(sizes: Mapping[str, int]) -> list[str]:
    """One plain sentence per split that is empty or tiny (``< TINY_SPLIT`` records)."""
    out = []
    for name in ("train", "valid", "test"):
        n = int(sizes.get(name, 0))
        if n == 0:
            out.append(f"the {name} split is empty: {_ROLE[name]} on it is impossible; "
                       f"{_ADVICE}")
        elif n < TINY_SPLIT and name != "train":
            out.append(f"the {name} split has only {n} record(s): its metrics will be noise "
                       f"(a single record moves HIT by {100 / n:.0f} points)")
    return out


def require_records(dataset: Any, split: str, purpose: str) -> None:
    """Raise :class:`EmptySplitError` when ``split`` of ``dataset`` has no records.

    ``purpose`` says what the split was needed for ("select the best epoch").
    """
    n = len(dataset.records[split]) if split in dataset.records else 0
    if n == 0:
        raise EmptySplitError(
            f"the {split} split of dataset {dataset.name!r} is empty (0 records), so there "
            f"is nothing to {purpose} on; {_ADVICE}")
