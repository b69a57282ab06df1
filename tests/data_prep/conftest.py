"""Fixtures: a small ImageFolder of real photos (with bad files) and its converted shards."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.imagefolder import convert
from data_prep.sample_photos import make_photo_folder
from data_prep.shard_writer import WriteOptions

OPTS = WriteOptions(num_shards=2, max_resolution=96, write_mode="jpg", jpeg_quality=90, workers=1)


@pytest.fixture(scope="session")
def photo_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SRC/train: 3 classes x 6 photo crops + corrupt, truncated, CMYK, gray, PNG-as-JPEG; SRC/val: 3 x 2."""
    root = tmp_path_factory.mktemp("photos")
    make_photo_folder(root / "train", per_class=6, classes=3, size=(120, 160), bad_files=True)
    make_photo_folder(root / "val", per_class=2, classes=3, size=(120, 160), seed=1)
    return root


@pytest.fixture(scope="session")
def photo_shards(photo_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photo_src converted with OPTS: OUT/train and OUT/val shards folders."""
    out = tmp_path_factory.mktemp("shards")
    convert(photo_src, out, OPTS)
    return out
