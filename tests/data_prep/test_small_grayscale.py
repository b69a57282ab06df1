"""A 28 px grayscale ImageFolder (the first use of a new small dataset): stored losslessly, its
pixel statistics recorded at conversion, and the embedded preset using its layout and statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from data_prep.imagefolder import convert
from data_prep.manifest import MANIFEST, read_mean_std, read_meta
from data_prep.shard_writer import WriteOptions


def _digits(root: Path, per_class: int = 6, seed: int = 0) -> np.ndarray:
    """root/<class>/<i>.png: 28x28 grayscale blobs on black (3 classes); returns every image [N, 28, 28]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    images = []
    for c in range(3):
        for i in range(per_class):
            cy, cx, r = 8 + 6 * c, 10 + rng.integers(0, 8), 4 + rng.integers(0, 4)
            img = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 200 + rng.integers(0, 55), 0).astype(np.uint8)
            (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img, mode="L").save(root / f"class_{c}" / f"{i}.png")
            images.append(img)
    return np.stack(images)


@pytest.fixture
def small_gray(tmp_path: Path) -> tuple[Path, np.ndarray]:
    src = tmp_path / "src"
    train = _digits(src / "train")
    _digits(src / "val", per_class=2, seed=1)
    out = tmp_path / "out"
    convert(src, out, WriteOptions(num_shards=2, max_resolution=None))
    return out, train


def test_small_images_are_stored_raw_with_their_pixel_statistics(small_gray) -> None:
    out, train = small_gray
    meta = read_meta(pq.read_schema(out / "train" / MANIFEST))
    assert meta["write_mode"] == "raw"  # "auto": lossless for 28 px sources, no JPEG artefacts
    statuses = set(pq.read_table(out / "train" / MANIFEST).column("status").to_pylist())
    assert statuses == {"ok"}  # nothing re-encoded
    mean, std = read_mean_std(out / "train")
    px = train.astype(np.float64) / 255.0
    assert mean == pytest.approx((px.mean(),) * 3, abs=1e-4)  # gray replicated to RGB
    assert std == pytest.approx((px.std(),) * 3, abs=1e-4)


def test_large_photos_stay_jpeg(photo_shards: Path) -> None:
    assert read_meta(pq.read_schema(photo_shards / "train" / MANIFEST))["write_mode"] == "jpg"


def test_embedded_preset_takes_the_converters_layout_and_statistics(small_gray) -> None:
    from attmask_ray.presets import embedded

    out, _ = small_gray
    cfg = embedded("other", root=str(out), epochs=2)
    assert cfg.data.val_path == f"{out}/val"  # imagefolder writes val/, fashion_mnist test/
    assert (tuple(cfg.data.mean), tuple(cfg.data.std)) == read_mean_std(out / "train")
