"""The in-memory form of a prepared dataset, shared by the data pipeline and the trainer.

A prepared dataset holds every user's chronological item sequence in CSR form
(``offsets``/``items``), the records of each split as (user, position) pairs, the
evaluation candidates (stored arrays, or the seed they are computed from on demand;
read either through :meth:`PreparedDataset.evaluation_candidates`), and the maps back
to raw ids. A record ``r``
predicts ``items[offsets[u] + p]`` from the items before it (at most ``max_len``),
where ``u = records.users[r]`` and ``p = records.positions[r] >= 1``.

Item id 0 is padding; real items are ``1..n_items``. Users are ``0..n_users-1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

SPLITS = ("train", "valid", "test")
EVAL_SPLITS = ("valid", "test")


@dataclass
class Records:
    """The records of one split.

    Attributes:
        users: ``int64 [R]`` user index of each record.
        positions: ``int64 [R]`` index of the target inside the user's sequence (>= 1).
        targets: ``int64 [R]`` the target item id (1..n_items).
        times: ``int64 [R]`` timestamp of the target interaction, or ``None`` when
            the source has no timestamps.
    """

    users: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def subset(self, index: np.ndarray) -> Records:
        """The records at ``index`` (an integer array or a boolean mask)."""
        return Records(
            self.users[index],
            self.positions[index],
            self.targets[index],
            None if self.times is None else self.times[index],
        )


@dataclass
class PreparedDataset:
    """A dataset ready for training and evaluation.

    Attributes:
        name: the dataset's name (folder name under ``datasets/``).
        n_users: number of users; user ids are ``0..n_users-1``.
        n_items: number of real items; item ids are ``1..n_items``, 0 is padding.
        offsets: ``int64 [n_users + 1]`` CSR offsets into ``items``.
        items: ``int64 [n_interactions]`` every user's items in time order.
        times: ``int64 [n_interactions]`` timestamps aligned with ``items``, or ``None``.
        records: split name (``train``, ``valid``, ``test``) -> :class:`Records`.
        candidates: ``valid``/``test`` -> ``int64 [R, n_negatives]`` stored
            negatives of each evaluation record; a split stored here takes precedence
            over ``candidate_stream``.
        user_ids: ``[n_users]`` raw user ids (strings).
        item_ids: ``[n_items + 1]`` raw item ids (strings); entry 0 is the padding id ``""``.
        card: JSON-able description: source, options, statistics, split sizes.
        candidate_stream: ``(seed, n_negatives)`` of candidates computed on demand
            (:mod:`mgnm_pyg.data.candidates`) for the splits not in ``candidates``; None
            when every evaluation split is stored.
    """

    name: str
    n_users: int
    n_items: int
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray | None
    records: dict[str, Records]
    candidates: dict[str, np.ndarray]
    user_ids: np.ndarray
    item_ids: np.ndarray
    card: dict[str, Any] = field(default_factory=dict)
    candidate_stream: tuple[int, int] | None = None

    @property
    def n_interactions(self) -> int:
        return int(self.items.shape[0])

    def sequence(self, user: int) -> np.ndarray:
        """All items of ``user`` in time order."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def history_lengths(self, records: Records, max_len: int) -> np.ndarray:
        """``int64 [R]`` number of history items each record sees (at most ``max_len``)."""
        return np.minimum(records.positions, max_len)

    def histories(
        self, users: np.ndarray, positions: np.ndarray, max_len: int
    ) -> np.ndarray:
        """Left-aligned, zero-padded histories trimmed to the batch's longest one.

        Row ``b`` holds, oldest first, the (at most ``max_len``) items of user
        ``users[b]`` before position ``positions[b]``, then zeros. The width is the
        longest history in the batch, never more.

        Shapes:
            users, positions: ``[B]``; returns ``int64 [B, m]``, ``m = max(min(p, max_len))``.
        """
        users = np.asarray(users, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        lengths = np.minimum(positions, max_len)
        width = int(lengths.max()) if lengths.size else 0
        width = max(width, 1)
        start = self.offsets[users] + positions - lengths
        cols = np.arange(width, dtype=np.int64)
        index = start[:, None] + cols[None, :]
        valid = cols[None, :] < lengths[:, None]
        index = np.where(valid, index, 0)
        return np.where(valid, self.items[index], 0)

    def candidate_width(self, split: str) -> int | None:
        """Candidates per record of ``split``, or None when the split has none."""
        if split in self.candidates:
            return int(self.candidates[split].shape[1])
        if self.candidate_stream is not None and split in EVAL_SPLITS:
            return int(self.candidate_stream[1])
        return None

    def candidate_rows(self, split: str) -> int:
        """Number of candidate rows of ``split`` (its record count when generated)."""
        if split in self.candidates:
            return int(self.candidates[split].shape[0])
        return len(self.records[split]) if self.candidate_width(split) is not None else 0

    def evaluation_candidates(self, split: str, rows: np.ndarray) -> np.ndarray:
        """The sampled-evaluation negatives of records ``rows`` of ``split``.

        Stored and generated datasets give the same rows (a stored array is the
        generated one, materialised by ``prepare``).

        Shapes:
            rows: ``[B]`` record indices (or a boolean mask); returns ``int64 [B, n]``.

        Raises:
            KeyError: the split has no candidates.
        """
        if split in self.candidates:
            return np.asarray(self.candidates[split][rows], dtype=np.int64)
        if self.candidate_width(split) is None:
            raise KeyError(split)
        from mgnm_pyg.data.candidates import record_candidates

        rows = np.arange(len(self.records[split]))[rows]
        seed, n = self.candidate_stream
        return record_candidates(self.interaction_keys, self.n_items, seed, split, rows,
                                 self.records[split].users[rows], n)

    @cached_property
    def interaction_keys(self) -> np.ndarray:
        """Sorted unique ``int64`` keys ``user * (n_items + 1) + item`` of every interaction.

        Computed once and cached; negative sampling looks pairs up in it with
        ``np.searchsorted``.
        """
        from mgnm_pyg.data.negatives import interaction_keys

        return interaction_keys(self.offsets, self.items, self.n_items)


def find_user(dataset: Any, user: str) -> int | None:
    """Internal id of raw user id ``user``, or None when the dataset does not know it."""
    found = np.flatnonzero(np.asarray(dataset.user_ids).astype(str) == user)
    return int(found[0]) if found.size else None
