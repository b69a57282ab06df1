"""Linear-probe loader: RandomResizedCrop + flip views of the full image, one pass per epoch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import LinearProbeLoader, check_dataset
from attmask_ray.data.linear_probe import LINEAR_PROBE_SCALE, linear_probe_config

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CFG = DataConfig(global_crop_size=64, local_crop_size=32, local_crops_number=3, eval_resize=80, num_workers=1)


def test_config_keeps_only_crop_and_flip() -> None:
    lp = linear_probe_config(CFG)
    assert lp.local_crops_number == 0 and lp.global_crops_scale == LINEAR_PROBE_SCALE == (0.08, 1.0)
    assert lp.color_jitter_prob == lp.grayscale_prob == lp.solarize_prob == 0.0 and lp.blur_prob == (0.0, 0.0, 0.0)
    assert (lp.global_crop_size, lp.mean, lp.std, lp.train_path) == (CFG.global_crop_size, CFG.mean, CFG.std, CFG.train_path)


def test_each_pass_is_a_new_epoch_of_views(photo_shards: Path) -> None:
    path = str(photo_shards / "train")
    info = check_dataset(path)
    loader = LinearProbeLoader(path, CFG, batch_size=256)  # capped at the smallest shard
    epochs = [list(loader), list(loader)]
    assert loader.epoch == 2 and len(epochs[0]) == len(loader) >= 2
    for batches in epochs:
        images = torch.cat([x for x, _ in batches])
        labels = torch.cat([y for _, y in batches])
        assert images.shape[1:] == (3, 64, 64) and images.dtype == torch.float32
        assert len(labels) >= info.num_samples - 2 * max(info.shard_sizes)  # drop_last per shard only
        assert set(labels.tolist()) <= set(np.unique(info.labels).tolist())
        mean, std = torch.tensor(CFG.mean).view(1, 3, 1, 1), torch.tensor(CFG.std).view(1, 3, 1, 1)
        pix = images * std + mean
        assert pix.min() >= -1e-4 and pix.max() <= 1 + 1e-4 and pix.std() > 0.1
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])  # reshuffled, re-cropped
