"""Device-side RandomResizedCrop: box statistics, resampling exactness, end-to-end pixels."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import build_eval_loader, build_train_loader
from attmask_ray.data.device_crops import crop_resize, sample_boxes
from tests.data.order import epoch_indices

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_boxes_respect_scale_ratio_and_bounds() -> None:
    g = torch.Generator().manual_seed(0)
    n = 20_000
    h = torch.randint(100, 400, (n,)).float()
    w = torch.round(h * (torch.rand(n, generator=g) * 0.7 + 0.7))  # photo-like aspect ratios
    for scale in ((0.25, 1.0), (0.05, 0.25)):
        b = sample_boxes(h, w, scale, g)
        cw, ch = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        assert bool((b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all())
        assert bool((cw >= 1).all() and (ch >= 1).all())
        frac = cw * ch / (h * w)
        normal = (frac >= scale[0] * 0.8) & (frac <= scale[1] * 1.2)  # rounding slack
        assert normal.float().mean() > 0.97  # the rest: torchvision's centre-crop fallback
        ar = (cw / ch)[normal]
        assert ar.min() > 0.7 and ar.max() < 1.45
        mid = (scale[0] + scale[1]) / 2
        assert abs(frac[normal].mean().item() - mid) < 0.05 * mid / 0.3 + 0.02  # ~uniform area


def test_roi_align_matches_opencv_on_a_real_photo() -> None:
    from skimage.data import astronaut

    img = astronaut()[:300, :400]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    box = torch.tensor([[50.0, 40.0, 250.0, 240.0]])  # 200x200 -> 100 (shrink) and -> 400 (enlarge)
    small = crop_resize(x, box, 100)[0].permute(1, 2, 0).numpy()
    ref = cv2.resize(img[40:240, 50:250], (100, 100), interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(small - ref).mean() < 1.5  # area-like averaging, no aliasing
    big = crop_resize(x, box, 400)[0].permute(1, 2, 0).numpy()
    ref = cv2.resize(img[40:240, 50:250], (400, 400), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert np.abs(big[2:-2, 2:-2] - ref[2:-2, 2:-2]).mean() < 1.5  # bilinear when enlarging


def test_device_mode_full_crop_reproduces_stored_pixels(fmnist_shards: Path) -> None:
    """28x28 Fashion-MNIST, scale (1, 1), no colour ops: each global crop is the stored image (maybe flipped)."""
    off = dict(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=(0.0, 0.0, 0.0), solarize_prob=0.0)
    cfg = DataConfig(global_crop_size=28, local_crop_size=12, local_crops_number=2, eval_resize=28, num_workers=1,
                     global_crops_scale=(1.0, 1.0), **off)
    train = build_train_loader(cfg, 50, path=str(fmnist_shards / "train"), crops_on="device")
    assert train.crops_on == "device"
    crops, labels = next(iter(train))
    assert [tuple(c.shape) for c in crops] == [(50, 3, 28, 28)] * 2 + [(50, 3, 12, 12)] * 2
    idx = epoch_indices(train)[:50]
    np.testing.assert_array_equal(labels.numpy(), train.info.labels[idx])
    ev = build_eval_loader(str(fmnist_shards / "train"), cfg, batch_size=200)
    images = torch.cat([x for x, _, _ in ev])[torch.from_numpy(idx)]
    for crop in crops[:2]:
        same = (crop - images).abs().amax(dim=(1, 2, 3)) < 1e-4
        flipped = (crop - images.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-4
        assert bool((same | flipped).all())
        assert 0 < flipped.sum() < 50
    assert not math.isclose(crops[2].std().item(), 0.0)


def test_device_mode_whole_images_match_the_sources(photo_shards: Path, photo_src: Path) -> None:
    """JPEG shards with mixed portrait/landscape sizes: the decoded slot holds exactly the stored image."""
    import pyarrow.parquet as pq

    from data_prep.source_image import decode_file

    cfg = DataConfig(global_crop_size=64, local_crop_size=32, local_crops_number=3, eval_resize=80, num_workers=1)
    loader = build_train_loader(cfg, 4, path=str(photo_shards / "train"), crops_on="device")
    rows = pq.read_table(photo_shards / "train" / "manifest.parquet").to_pylist()
    by_pos = {}
    for r in rows:
        if r["shard"]:
            by_pos[(r["shard"], r["index"])] = r
    names = [Path(s).name for s in loader.info.shards]
    order = [(names[s], int(i)) for s in range(len(names)) for i in range(loader.info.shard_sizes[s])]
    idx = epoch_indices(loader)
    seen = 0
    for b, (batch, labels, sizes) in enumerate(loader.raw_batches()):
        hmax, wmax = loader._slot
        slots = batch.view(batch.shape[0], hmax, wmax, 3)
        for k in range(batch.shape[0]):
            r = by_pos[order[idx[b * 4 + k]]]
            h, w = int(sizes[k, 0]), int(sizes[k, 1])
            assert (h, w) == (r["height"], r["width"]) and labels[k] == r["label"]
            ref = decode_file(photo_src / "train" / r["source"], 96).image.astype(np.float32)
            assert np.abs(slots[k, :h, :w].numpy().astype(np.float32) - ref).mean() < 8  # JPEG q90 + chroma subsampling loss only (a wrong layout gives > 30)
            seen += 1
    assert seen == len(loader) * 4
    crops, _ = next(iter(loader))
    assert [tuple(c.shape) for c in crops] == [(4, 3, 64, 64)] * 2 + [(4, 3, 32, 32)] * 3
