"""FFCV multi-crop train loader and eval loader on real photos and Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import DataError, build_eval_loader, build_train_loader, check_dataset
from attmask_ray.data.sharding import shard_slice
from tests.data.order import epoch_indices

# numba's dispatcher finalizer raises a harmless KeyError when an FFCV Loader is garbage-collected
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CFG = DataConfig(global_crop_size=64, local_crop_size=32, local_crops_number=3, eval_resize=80, num_workers=1)
B = 4


@pytest.fixture(scope="module")
def ranks(photo_shards: Path) -> list:
    """Two simulated Ray Train ranks over the photo train shards (built once: numba compile)."""
    path = str(photo_shards / "train")
    return [build_train_loader(CFG, B, rank=r, world_size=2, seed=7, path=path) for r in range(2)]


def test_shapes_dtypes_labels_and_normalisation(ranks: list, photo_shards: Path) -> None:
    loader = ranks[0]
    info = check_dataset(str(photo_shards / "train"))
    assert info.num_samples == 3 * 8 + 3  # + CMYK, gray, PNG-as-JPEG converted; corrupt/truncated skipped
    loader.set_epoch(0)
    batches = list(loader)
    assert len(batches) == len(loader) == sum((n // 2) // B for n in info.shard_sizes)
    labels = torch.cat([lab for _, lab in batches])
    np.testing.assert_array_equal(labels.numpy(), info.labels[epoch_indices(loader)])
    crops, lab = batches[0]
    assert len(crops) == 2 + CFG.local_crops_number
    assert [tuple(c.shape) for c in crops] == [(B, 3, 64, 64)] * 2 + [(B, 3, 32, 32)] * 3
    assert all(c.dtype == torch.float32 and c.device.type == "cpu" and c.is_contiguous() for c in crops)
    assert lab.dtype == torch.int64 and lab.shape == (B,)
    mean, std = torch.tensor(CFG.mean).view(1, 3, 1, 1), torch.tensor(CFG.std).view(1, 3, 1, 1)
    pix = torch.cat([(c * std + mean).flatten() for c in crops])
    assert pix.min() >= -1e-4 and pix.max() <= 1 + 1e-4 and pix.std() > 0.1  # real content, de-normalises to [0, 1]
    assert not torch.allclose(crops[0], crops[1])  # two different global views
    assert loader.wait_time >= 0


def test_two_ranks_cover_each_sample_once_per_epoch(ranks: list, photo_shards: Path) -> None:
    info = check_dataset(str(photo_shards / "train"))
    seen = []
    for epoch in (0, 1):
        per_rank = []
        for loader in ranks:
            loader.set_epoch(epoch)
            labels = torch.cat([lab for _, lab in loader]).numpy()
            idx = epoch_indices(loader)
            np.testing.assert_array_equal(labels, info.labels[idx])  # what was yielded is what was planned
            per_rank.append(idx)
        assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0]) * B
        assert not set(per_rank[0]) & set(per_rank[1])  # no overlap across ranks
        seen.append(np.concatenate(per_rank))
    assert not np.array_equal(seen[0], seen[1])  # reshuffled per epoch
    ranks[0].set_epoch(1)
    np.testing.assert_array_equal(epoch_indices(ranks[0]), seen[1][: len(seen[1]) // 2])  # deterministic
    # before drop_last, the rank slices partition every shard exactly (n divisible by 2 here)
    for n in (10, 14, 1000):
        for epoch in range(3):
            parts = [shard_slice(n, 0, r, 2, 7, epoch) for r in range(2)]
            assert sorted(np.concatenate(parts).tolist()) == list(range(n))


def test_eval_loader_centre_crops_in_order(photo_shards: Path) -> None:
    path = str(photo_shards / "val")
    info = check_dataset(path)
    loader = build_eval_loader(path, CFG, batch_size=2)
    out = list(loader)
    assert len(out) == len(loader)
    idx = torch.cat([i for _, _, i in out]).numpy()
    np.testing.assert_array_equal(idx, np.arange(info.num_samples))
    np.testing.assert_array_equal(torch.cat([y for _, y, _ in out]).numpy(), info.labels)
    assert all(x.shape[1:] == (3, 64, 64) and x.dtype == torch.float32 for x, _, _ in out)
    again = torch.cat([x for x, _, _ in loader])
    assert torch.equal(again, torch.cat([x for x, _, _ in out]))  # deterministic: no augmentation


def test_fashion_mnist_28px_uses_the_same_code(fmnist_shards: Path) -> None:
    cfg = DataConfig(global_crop_size=28, local_crop_size=12, local_crops_number=2, eval_resize=32, num_workers=1)
    train = build_train_loader(cfg, 32, path=str(fmnist_shards / "train"))
    crops, labels = next(iter(train))
    assert [tuple(c.shape) for c in crops] == [(32, 3, 28, 28)] * 2 + [(32, 3, 12, 12)] * 2
    np.testing.assert_array_equal(labels.numpy(), train.info.labels[epoch_indices(train)[:32]])
    ev = build_eval_loader(str(fmnist_shards / "test"), cfg, batch_size=1000, rank=1, world_size=2)
    assert len(ev) == 5 and ev.num_samples == 5000
    x, y, i = next(iter(ev))
    assert x.shape == (1000, 3, 28, 28) and torch.equal(i[:3], torch.tensor([1, 3, 5]))
    np.testing.assert_array_equal(y.numpy(), ev.info.labels[i.numpy()])


def test_bad_requests_fail_before_building_loaders(photo_shards: Path, tmp_path: Path) -> None:
    path = str(photo_shards / "train")
    with pytest.raises(DataError, match=r"at most 96 px .* 224 px crop"):
        build_train_loader(DataConfig(), 4, path=path)
    with pytest.raises(DataError, match="local_crop_size=128 exceeds the 96 px"):
        build_train_loader(DataConfig(global_crop_size=64, local_crop_size=128, eval_resize=80), 4, path=path)
    with pytest.raises(DataError, match="too few for batch_size=64"):
        build_train_loader(CFG, 64, path=path)
    with pytest.raises(DataError, match="does not exist"):
        build_train_loader(CFG, 4, path=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="world rank"):
        build_train_loader(CFG, 4, rank=2, world_size=2, path=path)
