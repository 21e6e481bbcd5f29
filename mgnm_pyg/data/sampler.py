"""A batch sampler that groups records of similar history length.

Histories are padded to the longest one of their batch, so batching records of
similar length keeps padding (wasted work in the graph, capsule and LSTM steps)
small.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class LengthBucketSampler:
    r"""Yield batches of record indices whose history lengths are close.

    Records are sorted by history length, ties broken at random, and cut into
    consecutive batches of ``batch_size`` (the last may be smaller); the order of the
    batches is then shuffled. Both random steps use ``np.random.default_rng([seed,
    epoch])``, so an epoch's batches depend only on ``(seed, epoch)``. With
    ``shuffle=False`` the batches are the records in index order, cut in ``batch_size``
    chunks, which is what evaluation wants.

    Every record appears in exactly one batch per epoch.

    Args:
        lengths: ``[R]`` history length of each record
            (:meth:`PreparedDataset.history_lengths`).
        batch_size: records per batch.
        shuffle: bucket and shuffle (training) or keep index order (evaluation).
        seed: base seed.

    Shapes:
        each yielded batch is ``int64 [<= batch_size]``.
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.lengths.shape[0] // self.batch_size)

    def batches(self) -> list[np.ndarray]:
        """This epoch's batches, as a list."""
        n = self.lengths.shape[0]
        if not self.shuffle:
            order = np.arange(n, dtype=np.int64)
            return [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = np.lexsort((rng.random(n), self.lengths)).astype(np.int64)
        chunks = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        return [chunks[i] for i in rng.permutation(len(chunks))]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches())
