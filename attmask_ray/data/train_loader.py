"""Multi-crop training loader: FFCV shards -> 2 global + m local augmented crops on a device."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import augment
from attmask_ray.data.dataset import DatasetInfo, check_dataset
from attmask_ray.data.errors import DataError
from attmask_ray.data.multicrop import MultiCropDecoder, split_crops
from attmask_ray.data.sharding import PlannedOrder, shard_slice, shard_visit_order


def _labels_pipeline(device: torch.device) -> list:
    from ffcv.fields.decoders import IntDecoder
    from ffcv.transforms import ToDevice, ToTensor

    ops = [IntDecoder(), ToTensor()]
    return ops + ([ToDevice(device, non_blocking=True)] if device.type != "cpu" else [])


def _rows_pipeline(decoder: object, device: torch.device) -> object:
    """PipelineSpec for the image field with a custom decoder (a plain list would need an FFCV decoder subclass)."""
    from ffcv.pipeline import PipelineSpec
    from ffcv.transforms import ToDevice, ToTensor

    ops = [ToTensor()] + ([ToDevice(device, non_blocking=True)] if device.type != "cpu" else [])
    return PipelineSpec("image", decoder=decoder, transforms=ops)


def check_crop_sizes(info: DatasetInfo, cfg: DataConfig) -> None:
    """A crop larger than the largest stored side means the data was converted too small."""
    for name in ("global_crop_size", "local_crop_size"):
        size = getattr(cfg, name)
        if size > info.max_resolution:
            raise DataError(f"data.{name}={size} exceeds the {info.max_resolution} px stored in {info.path}; lower "
                            f"data.{name} or re-convert with --max-resolution >= {size}")


class TrainLoader:
    """Rank-sharded, per-epoch reshuffled multi-crop loader (one FFCV Loader per shard, built once).

    ``iter(loader)`` yields ``(crops, labels)``: crops = [2 x [B, 3, G, G]] + [m x [B, 3, L, L]]
    float32 normalised on ``device``; labels [B] int64. ``len(loader)`` = steps per epoch
    (drop_last). ``wait_time`` = seconds spent waiting for FFCV batches in the last epoch.
    """

    def __init__(self, cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0, path: str | None = None):
        from ffcv.loader import Loader

        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is not in [0, world_size={world_size}); pass the Ray Train world rank and size")
        self.cfg, self.batch_size, self.rank, self.world_size = cfg, batch_size, rank, world_size
        self.device, self.seed = torch.device(device), seed
        self.info = check_dataset(path or cfg.train_path, min_resolution=cfg.global_crop_size)
        check_crop_sizes(self.info, cfg)
        self.epoch = 0
        self.wait_time = 0.0
        self._per_rank = [n // world_size for n in self.info.shard_sizes]
        if len(self) == 0:
            raise DataError(f"{self.info.path} has {self.info.num_samples} samples: too few for batch_size={batch_size} "
                            f"on {world_size} ranks; lower the batch size or use more data")
        self._probs = augment.view_probs(cfg)
        self._mean = torch.tensor(cfg.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.std, device=self.device).view(1, 3, 1, 1)
        self._orders, self.loaders = [], []
        decoder_args = (cfg.global_crop_size, cfg.local_crop_size, cfg.local_crops_number,
                        cfg.global_crops_scale, cfg.local_crops_scale)
        for s, shard in enumerate(self.info.shards):
            if self._per_rank[s] < batch_size:  # a shard slice smaller than a batch yields nothing
                self._orders.append(None)
                self.loaders.append(None)
                continue
            order = PlannedOrder(self._slice(s, 0))
            decoder = MultiCropDecoder(*decoder_args)
            self.layout = decoder.layout
            self._orders.append(order)
            self.loaders.append(Loader(shard, batch_size=batch_size, num_workers=cfg.num_workers, order=order,
                                       os_cache=True, drop_last=True, batches_ahead=3,
                                       pipelines={"image": _rows_pipeline(decoder, self.device),
                                                  "label": _labels_pipeline(self.device)}))

    def _slice(self, shard: int, epoch: int) -> np.ndarray:
        return shard_slice(self.info.shard_sizes[shard], shard, self.rank, self.world_size, self.seed, epoch)

    def __len__(self) -> int:
        return sum(n // self.batch_size for n in self._per_rank)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle deterministically from (seed, epoch); call before iterating each epoch."""
        self.epoch = int(epoch)

    def epoch_indices(self) -> np.ndarray:
        """Global sample indices this rank reads in the current epoch, in yield order: [len(self) * B]."""
        out = []
        offsets = self.info.shard_offsets
        for s in shard_visit_order(len(self.info.shards), self.seed, self.epoch):
            keep = (self._per_rank[s] // self.batch_size) * self.batch_size
            if keep:
                out.append(self._slice(s, self.epoch)[:keep].astype(np.int64) + offsets[s])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def _generators(self) -> tuple[torch.Generator, torch.Generator]:
        key = (self.seed * 1_000_003 + self.epoch) * 4099 + self.rank
        dev = torch.Generator(device=self.device)
        dev.manual_seed(key & 0x7FFFFFFFFFFFFFFF)
        cpu = torch.Generator()
        cpu.manual_seed((key ^ 0x9E3779B9) & 0x7FFFFFFFFFFFFFFF)
        return dev, cpu

    def views(self, rows: torch.Tensor, gen: torch.Generator, order_gen: torch.Generator) -> list[torch.Tensor]:
        """rows [B, K] uint8 (see multicrop.crop_layout) -> augmented, normalised crops (list)."""
        out = []
        b = rows.shape[0]
        for k, crop in enumerate(split_crops(rows, self.layout)):
            probs = self._probs[min(k, 2)]
            x = crop.float().div_(255.0).contiguous()
            p = augment.sample_params(b, self.cfg, probs, gen, self.device, order_gen)
            x = augment.apply(x, p, self.cfg, probs)
            out.append(augment.normalise(x, self._mean, self._std))
        return out

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
        gen, order_gen = self._generators()
        self.wait_time = 0.0
        for s in shard_visit_order(len(self.info.shards), self.seed, self.epoch):
            loader = self.loaders[s]
            if loader is None:
                continue
            self._orders[s].current = self._slice(s, self.epoch)
            loader.next_epoch = self.epoch
            t0 = time.perf_counter()
            it = iter(loader)
            self.wait_time += time.perf_counter() - t0
            while True:
                t0 = time.perf_counter()
                try:
                    rows, labels = next(it)
                except StopIteration:
                    self.wait_time += time.perf_counter() - t0
                    break
                self.wait_time += time.perf_counter() - t0
                labels = labels.view(-1).long().clone()  # FFCV recycles its buffers
                yield self.views(rows, gen, order_gen), labels


def build_train_loader(cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                       device: str | torch.device = "cpu", seed: int = 0, path: str | None = None) -> TrainLoader:
    """Build the multi-crop training loader (see :class:`TrainLoader`); ``path`` defaults to cfg.train_path."""
    return TrainLoader(cfg, batch_size, rank, world_size, device, seed, path)
