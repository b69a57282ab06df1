"""Evaluation loader: resize shorter side to ``eval_resize``, centre-crop ``global_crop_size``."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data.dataset import check_dataset
from attmask_ray.data.multicrop import CenterCropDecoder
from attmask_ray.data.sharding import PlannedOrder, eval_slice
from attmask_ray.data.train_loader import _labels_pipeline, _rows_pipeline
from data_prep.errors import DataError


class EvalLoader:
    """Sequential, no drop_last; yields (images [B, 3, G, G] float normalised, labels [B] int64,
    indices [B] int64 global sample indices). With world_size > 1 rank r reads samples r, r+W, ...
    of every shard; ``indices`` restricts it to those global sample indices."""

    def __init__(self, path: str, cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                 device: str | torch.device = "cpu", indices: np.ndarray | None = None):
        from ffcv.loader import Loader

        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is not in [0, world_size={world_size})")
        self.info = check_dataset(path)
        self.cfg, self.batch_size, self.device = cfg, batch_size, torch.device(device)
        self._mean = torch.tensor(cfg.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.std, device=self.device).view(1, 3, 1, 1)
        self._slices = [eval_slice(n, rank, world_size) for n in self.info.shard_sizes]
        if indices is not None:  # only these global sample indices (in dataset order)
            wanted = np.unique(np.asarray(indices, dtype=np.int64))
            self._slices = [sl[np.isin(sl.astype(np.int64) + off, wanted)]
                            for sl, off in zip(self._slices, self.info.shard_offsets)]
        self.loaders = []
        for shard, sl in zip(self.info.shards, self._slices):
            if len(sl) == 0:
                self.loaders.append(None)
                continue
            dec = CenterCropDecoder(cfg.global_crop_size, cfg.eval_resize)
            self.loaders.append(Loader(shard, batch_size=batch_size, num_workers=cfg.num_workers,
                                       order=PlannedOrder(sl), os_cache=True, drop_last=False, batches_ahead=2,
                                       pipelines={"image": _rows_pipeline(dec, self.device),
                                                  "label": _labels_pipeline(self.device)}))

    @property
    def num_samples(self) -> int:
        """Samples this rank reads."""
        return int(sum(len(s) for s in self._slices))

    def __len__(self) -> int:
        return int(sum(-(-len(s) // self.batch_size) for s in self._slices))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        g = self.cfg.global_crop_size
        for loader, sl, off in zip(self.loaders, self._slices, self.info.shard_offsets):
            if loader is None:
                continue
            idx = torch.from_numpy(sl.astype(np.int64) + off)
            start = 0
            for rows, labels in loader:
                b = rows.shape[0]
                x = rows.view(b, g, g, 3).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
                x = (x - self._mean) / self._std
                yield x, labels.view(-1).long().clone(), idx[start:start + b].to(self.device)
                start += b


def build_eval_loader(path: str, cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                      device: str | torch.device = "cpu", indices: np.ndarray | None = None) -> EvalLoader:
    """Build the centre-crop evaluation loader (see :class:`EvalLoader`)."""
    return EvalLoader(path, cfg, batch_size, rank, world_size, device, indices)
