"""Fixtures: real-photo shards and a Fashion-MNIST subset, converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.fashion_mnist import IDX_DIR, build
from data_prep.imagefolder import convert
from data_prep.sample_photos import make_photo_folder
from data_prep.shard_writer import WriteOptions


@pytest.fixture(scope="session")
def photo_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SRC/train: 3 classes x 8 photo crops + corrupt, truncated, CMYK, gray, PNG-as-JPEG; SRC/val: 3 x 3."""
    src = tmp_path_factory.mktemp("photos")
    make_photo_folder(src / "train", per_class=8, classes=3, size=(120, 160), bad_files=True)
    make_photo_folder(src / "val", per_class=3, classes=3, size=(120, 160), seed=1)
    return src


@pytest.fixture(scope="session")
def photo_shards(photo_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photo_src converted: OUT/train (2 shards, max side 96) and OUT/val."""
    src = photo_src
    out = tmp_path_factory.mktemp("photo_shards")
    convert(src, out, WriteOptions(num_shards=2, max_resolution=96))
    return out


@pytest.fixture(scope="session")
def fmnist_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST: train = first 20 per class (200), test = all 10,000."""
    if not (IDX_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    out = tmp_path_factory.mktemp("fmnist")
    build(out, train_subset=200)
    return out
