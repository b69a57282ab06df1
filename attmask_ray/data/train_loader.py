"""Multi-crop training loader: FFCV shards -> 2 global + m local augmented crops on a device."""

from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import augment, device_crops
from attmask_ray.data.dataset import DatasetInfo, check_dataset
from attmask_ray.data.host_augment import HostAugmenter
from attmask_ray.data.multicrop import FullImageDecoder, MultiCropDecoder, crop_views_hwc
from attmask_ray.data.sharding import PlannedOrder, shard_slice, shard_visit_order
from data_prep.errors import DataError

CROP_MODES = ("auto", "device", "host")


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
            raise DataError(f"data.{name}={size} exceeds the {info.max_resolution} px stored in {info.path}; "
                            + info.too_small_fix(f"data.{name}", size))


class TrainLoader:
    """Rank-sharded, per-epoch reshuffled multi-crop loader (one FFCV Loader per shard, built once).

    ``iter(loader)`` yields ``(crops, labels)``: crops = [2 x [B, 3, G, G]] + [m x [B, 3, L, L]]
    float32 normalised on ``device``; labels [B] int64. ``len(loader)`` = steps per epoch
    (drop_last). ``wait_time`` = seconds spent waiting for FFCV batches in the last epoch.

    ``crops_on``: "device" = the host only decodes (once); the RandomResizedCrops are cut
    on ``device`` with roi_align and augmented there with batched tensor ops
    (:mod:`augment`); "host" = the FFCV decoder cuts all crops after its single decode
    (OpenCV area resize) and ``cfg.num_workers`` threads augment them with the compiled
    per-pixel kernel (:mod:`host_augment`), then the float views move to ``device``;
    "auto" = "device" on CUDA, else "host".
    """

    def __init__(self, cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0, path: str | None = None,
                 crops_on: str = "auto"):
        from ffcv.loader import Loader

        if batch_size < 1:
            raise DataError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is not in [0, world_size={world_size}); pass the Ray Train world rank and size")
        self.cfg, self.batch_size, self.rank, self.world_size = cfg, batch_size, rank, world_size
        self.device, self.seed = torch.device(device), seed
        if crops_on not in CROP_MODES:
            raise DataError(f"crops_on must be one of {CROP_MODES}, got {crops_on!r}")
        self.crops_on = crops_on if crops_on != "auto" else ("device" if self.device.type == "cuda" else "host")
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
        self._host_augment = HostAugmenter(cfg, cfg.num_workers) if self.crops_on == "host" else None
        self._orders, self.loaders = [], []
        self._sizes: list[torch.Tensor] = []  # device mode: [n, 2] (h, w) per shard
        self._slots: dict[int, tuple[int, int]] = {}  # device mode: (Hmax, Wmax) per shard
        self._slot = (0, 0)
        decoder_args = (cfg.global_crop_size, cfg.local_crop_size, cfg.local_crops_number,
                        cfg.global_crops_scale, cfg.local_crops_scale)
        for s, shard in enumerate(self.info.shards):
            if self._per_rank[s] < batch_size:  # a shard slice smaller than a batch yields nothing
                self._orders.append(None)
                self.loaders.append(None)
                self._sizes.append(torch.zeros(0, 2))
                continue
            order = PlannedOrder(self._slice(s, 0))
            if self.crops_on == "host":
                decoder = MultiCropDecoder(*decoder_args)
                self.layout = decoder.layout
                rows_device = torch.device("cpu")  # augmented on the host, moved afterwards
            else:
                from ffcv.reader import Reader
                meta = Reader(shard).metadata["f0"]  # field 0 = image (data_prep writes image, label)
                self._sizes.append(torch.from_numpy(np.stack([meta["height"], meta["width"]], 1).astype(np.float32)))
                self._slots[s] = (int(meta["height"].max()), int(meta["width"].max()))
                decoder = FullImageDecoder(*self._slots[s])
                rows_device = self.device
            self._orders.append(order)
            self.loaders.append(Loader(shard, batch_size=batch_size, num_workers=cfg.num_workers, order=order,
                                       os_cache=True, drop_last=True, batches_ahead=3,
                                       pipelines={"image": _rows_pipeline(decoder, rows_device),
                                                  "label": _labels_pipeline(self.device)}))

    def _slice(self, shard: int, epoch: int) -> np.ndarray:
        return shard_slice(self.info.shard_sizes[shard], shard, self.rank, self.world_size, self.seed, epoch)

    def __len__(self) -> int:
        return sum(n // self.batch_size for n in self._per_rank)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle deterministically from (seed, epoch); call before iterating each epoch."""
        self.epoch = int(epoch)

    def _generators(self) -> tuple[torch.Generator, torch.Generator]:
        """(parameter generator on the device that augments, CPU generator for orders), seeded by (seed, epoch, rank)."""
        key = (self.seed * 1_000_003 + self.epoch) * 4099 + self.rank
        dev = torch.Generator(device=self.device if self.crops_on == "device" else "cpu")
        dev.manual_seed(key & 0x7FFFFFFFFFFFFFFF)
        cpu = torch.Generator()
        cpu.manual_seed((key ^ 0x9E3779B9) & 0x7FFFFFFFFFFFFFFF)
        return dev, cpu

    def _device_crops(self, rows: torch.Tensor, sizes: torch.Tensor, gen: torch.Generator) -> list[torch.Tensor]:
        """rows [B, Hmax*Wmax*3] uint8 whole images, sizes [B, 2] (h, w) -> [globals [2B, 3, G, G],
        locals [m*B, 3, L, L]] in [0, 1] (crop-major: rows k*B..(k+1)*B are crop k); locals omitted if m = 0."""
        cfg, b = self.cfg, rows.shape[0]
        hmax, wmax = self._slot
        images = rows.view(b, hmax, wmax, 3).permute(0, 3, 1, 2).float()
        h, w = sizes[:, 0], sizes[:, 1]
        out = []
        for n, size, scale in ((2, cfg.global_crop_size, cfg.global_crops_scale),
                               (cfg.local_crops_number, cfg.local_crop_size, cfg.local_crops_scale)):
            if n == 0:
                continue
            boxes = device_crops.sample_boxes(h.repeat(n), w.repeat(n), scale, gen)
            out.append(device_crops.crop_resize(images, boxes, size).div_(255.0).clamp_(0, 1))
        return out

    def views(self, rows: torch.Tensor, gen: torch.Generator, order_gen: torch.Generator,
              sizes: torch.Tensor | None = None) -> list[torch.Tensor]:
        """rows [B, K] uint8 -> augmented, normalised crops (list of 2 + m [B, 3, S, S] float32).

        Host mode: rows follow multicrop.crop_layout. Device mode: rows are whole images and
        ``sizes`` [B, 2] gives each one's (h, w).
        """
        if self.crops_on == "host":
            pin = self.device.type == "cuda"
            views = self._host_augment(crop_views_hwc(rows, self.layout), gen, order_gen, pin_memory=pin)
            return [v.to(self.device, non_blocking=True) for v in views] if pin else views
        b = rows.shape[0]
        groups = self._device_crops(rows, sizes, gen)
        # three batched calls (global 1, global 2, all m locals at once): few kernel launches per batch
        parts = [(groups[0][:b], self._probs[0]), (groups[0][b:], self._probs[1])]
        if len(groups) > 1:
            parts.append((groups[1], self._probs[2]))
        out = []
        for x, probs in parts:
            p = augment.sample_params(x.shape[0], self.cfg, probs, gen, self.device, order_gen)
            x = augment.apply(x, p, self.cfg, probs)
            out.extend(augment.normalise(x, self._mean, self._std).split(b))
        return out

    def __iter__(self) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
        gen, order_gen = self._generators()
        for rows, labels, sizes in self.raw_batches():
            yield self.views(rows, gen, order_gen, sizes), labels

    def raw_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        """This epoch's un-augmented batches: (rows [B, K] uint8, labels [B] int64, sizes [B, 2] or None).

        Host mode: rows = crops (multicrop.crop_layout), sizes None. Device mode: rows = whole
        images in [Hmax, Wmax, 3] slots, sizes = (h, w) per sample on the device. Updates
        ``wait_time``; rows live in FFCV's recycled buffers, so use them before the next batch.
        """
        self.wait_time = 0.0
        for s in shard_visit_order(len(self.info.shards), self.seed, self.epoch):
            loader = self.loaders[s]
            if loader is None:
                continue
            order = self._orders[s].current = self._slice(s, self.epoch)
            if self.crops_on == "device":
                self._slot = self._slots[s]
                sizes_all = self._sizes[s][torch.from_numpy(order.astype(np.int64))].to(self.device)
            loader.next_epoch = self.epoch
            t0 = time.perf_counter()
            it = iter(loader)
            self.wait_time += time.perf_counter() - t0
            k = 0
            while True:
                t0 = time.perf_counter()
                try:
                    rows, labels = next(it)
                except StopIteration:
                    self.wait_time += time.perf_counter() - t0
                    break
                self.wait_time += time.perf_counter() - t0
                sizes = None
                if self.crops_on == "device":
                    sizes = sizes_all[k * self.batch_size:(k + 1) * self.batch_size]
                k += 1
                yield rows, labels.view(-1).long().clone(), sizes  # FFCV recycles its buffers


def build_train_loader(cfg: DataConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                       device: str | torch.device = "cpu", seed: int = 0, path: str | None = None,
                       crops_on: str = "auto") -> TrainLoader:
    """Build the multi-crop training loader (see :class:`TrainLoader`); ``path`` defaults to cfg.train_path."""
    return TrainLoader(cfg, batch_size, rank, world_size, device, seed, path, crops_on)
