"""Linear-probe training views: RandomResizedCrop + horizontal flip of the FULL image.

DINO's linear evaluation trains the classifier on ``RandomResizedCrop(224)`` (scale 0.08-1,
ratio 3/4-4/3) + ``RandomHorizontalFlip`` + normalise, cut from the original image. This
reuses the multi-crop training loader (decode once, crops on the device or in the FFCV
decoder) with every other augmentation switched off and the first global view kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch

from attmask_ray.config import DataConfig
from attmask_ray.data.dataset import check_dataset
from attmask_ray.data.device_crops import RRC_SCALE
from attmask_ray.data.train_loader import build_train_loader

LINEAR_PROBE_SCALE = RRC_SCALE  # torchvision RandomResizedCrop default, as DINO's eval_linear


def linear_probe_config(cfg: DataConfig, scale: tuple[float, float] = LINEAR_PROBE_SCALE) -> DataConfig:
    """Same data, crop size and normalisation; only RandomResizedCrop(``scale``, default 0.08-1) + flip, no local crops."""
    return replace(cfg, local_crops_number=0, global_crops_scale=tuple(scale), color_jitter_prob=0.0,
                   grayscale_prob=0.0, blur_prob=(0.0, 0.0, 0.0), solarize_prob=0.0)


class LinearProbeLoader:
    """Re-iterable over epochs: each ``iter()`` is the next epoch (reshuffled) of
    (images [B, 3, G, G] float32 normalised, labels [B] int64) with G = cfg.global_crop_size.

    The batch is capped at the smallest shard so tiny splits still yield (epochs drop the
    last partial batch of each shard, as training epochs do).
    """

    def __init__(self, path: str, cfg: DataConfig, batch_size: int, device: str | torch.device = "cpu", seed: int = 0,
                 scale: tuple[float, float] = LINEAR_PROBE_SCALE):
        info = check_dataset(path, min_resolution=cfg.global_crop_size)
        batch = max(1, min(batch_size, min(info.shard_sizes)))
        self.loader = build_train_loader(linear_probe_config(cfg, scale), batch, device=device, seed=seed, path=path)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.loader.set_epoch(self.epoch)
        self.epoch += 1
        for crops, labels in self.loader:
            yield crops[0], labels
