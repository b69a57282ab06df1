"""The sample order a TrainLoader plans, worked out from attmask_ray.data.sharding (tests only)."""

from __future__ import annotations

import numpy as np

from attmask_ray.data.sharding import shard_slice, shard_visit_order
from attmask_ray.data.train_loader import TrainLoader


def epoch_indices(loader: TrainLoader) -> np.ndarray:
    """Global sample indices ``loader`` reads in its current epoch, in yield order:
    [len(loader) * batch_size]."""
    info, out = loader.info, []
    for s in shard_visit_order(len(info.shards), loader.seed, loader.epoch):
        keep = (info.shard_sizes[s] // loader.world_size // loader.batch_size) * loader.batch_size
        if keep:
            rows = shard_slice(info.shard_sizes[s], s, loader.rank, loader.world_size, loader.seed, loader.epoch)
            out.append(rows[:keep].astype(np.int64) + info.shard_offsets[s])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
