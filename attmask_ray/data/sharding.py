"""Which samples each Ray Train rank reads in an epoch, and the FFCV order that follows it.

Per epoch and per shard, a permutation drawn from (seed, epoch, shard) is cut into
``world_size`` equal slices; rank r reads slice r. Across ranks every sample is read at
most once, each rank reads the same count, and only the ``n % world_size`` samples left
over in a shard wait for a later epoch (they change every epoch). Shards are visited in
an order drawn from (seed, epoch), the same on every rank.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ffcv.traversal_order.base import TraversalOrder


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in key]))


def shard_slice(n: int, shard: int, rank: int, world_size: int, seed: int, epoch: int) -> np.ndarray:
    """Local indices (into one shard of ``n`` samples) read by ``rank`` in ``epoch``: [n // world_size]."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    per = n // world_size
    perm = _rng(seed, epoch, shard, 0x5EED).permutation(n)
    return perm[rank * per:(rank + 1) * per].astype(np.uint64)


def shard_visit_order(num_shards: int, seed: int, epoch: int) -> list[int]:
    """Order in which shards are read in ``epoch`` (identical on all ranks)."""
    return _rng(seed, epoch, 0xD0C5).permutation(num_shards).tolist()


def eval_slice(n: int, rank: int, world_size: int) -> np.ndarray:
    """Sequential local indices of one shard for ``rank``: every ``world_size``-th from ``rank``."""
    return np.arange(rank, n, world_size, dtype=np.uint64)


class PlannedOrder(TraversalOrder):
    """An FFCV traversal order that returns whatever index list the owner set for this epoch.

    FFCV 1.0.2 calls ``order(loader)`` on an instance, so ``__call__`` binds the loader.
    """

    def __init__(self, first: Sequence[int]):
        self.current = np.asarray(first, dtype=np.uint64)

    def __call__(self, loader: object) -> "PlannedOrder":
        super().__init__(loader)
        return self

    def sample_order(self, epoch: int) -> np.ndarray:
        return self.current
