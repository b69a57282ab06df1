"""The IN-9 analogue (data_prep.fashion_in9) and the bg_challenge converter (data_prep.in9)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attmask_ray.data import DataError, check_dataset
from attmask_ray.eval.in9 import check_in9_root
from data_prep import fashion_in9 as fi
from data_prep.fashion_mnist import IDX_DIR
from data_prep.in9 import VARIANTS, convert
from data_prep.shard_writer import WriteOptions

HAVE_IDX = (IDX_DIR / "t10k-labels-idx1-ubyte.gz").exists()


def garment(seed: int) -> np.ndarray:
    """A 28 px 'garment': a filled rectangle with a few dark (background) pixels inside."""
    rng = np.random.default_rng(seed)
    g = np.zeros((28, 28), dtype=np.uint8)
    y0, x0 = rng.integers(0, 8, size=2)
    g[y0:y0 + 16, x0:x0 + 12] = rng.integers(1, 256, size=(16, 12))
    g[y0 + 3, x0 + 3] = 0
    return g


def test_paste_keeps_the_garment_exactly_and_the_background_elsewhere():
    bg = np.full((fi.CANVAS, fi.CANVAS), 77, dtype=np.uint8)
    g = garment(0)
    out = fi.paste(bg, g, 5, 9)
    mask = fi.canvas_mask(g, 5, 9)
    np.testing.assert_array_equal(out[5:33, 9:37][g > 0], g[g > 0])  # the foreground is the source garment
    assert (out[~mask] == 77).all() and mask.sum() == (g > 0).sum()


def test_boxes_and_tiles():
    mask = np.zeros((fi.CANVAS, fi.CANVAS), dtype=bool)
    mask[10:20, 4:30] = True
    mask[12, 31] = True
    assert fi.bounding_box(mask) == (10, 20, 4, 32)
    bg = np.arange(fi.CANVAS * fi.CANVAS).reshape(fi.CANVAS, fi.CANVAS).astype(np.uint8) | 1  # no zero pixel
    box = (10, 20, 4, 32)
    filled = fi.tile_fill(bg, box)
    outside = np.ones_like(mask)
    outside[10:20, 4:32] = False
    np.testing.assert_array_equal(filled[outside], bg[outside])
    np.testing.assert_array_equal(filled[10:20, 4:32], np.tile(bg[20:], (1, 1))[:10, :28])  # below: the largest strip
    assert fi.bounding_box(np.zeros((4, 4), dtype=bool)) == (0, 0, 0, 0)


def test_variants_follow_the_in9_definitions():
    rng = np.random.default_rng(0)
    photos = [np.full((60, 80, 3), 20 * (c + 1), dtype=np.uint8) for c in range(fi.NUM_CLASSES)]  # class c: gray 20(c+1)
    labels = np.repeat(np.arange(fi.NUM_CLASSES), 2)
    garments = np.stack([garment(i) for i in range(len(labels))])
    out = fi.val_variants(garments, labels, photos, labels, rng)  # every background its class's photo
    assert set(out) == set(VARIANTS)
    for i, c in enumerate(labels.tolist()):
        g = garments[i]
        fg = out["only_fg"][i] > 0
        np.testing.assert_array_equal(np.sort(out["only_fg"][i][fg]), np.sort(g[g > 0]))  # the garment on black
        mask = fg
        own = 20 * (c + 1)
        assert (out["original"][i][~mask] == own).all()  # class-correlated background
        np.testing.assert_array_equal(out["original"][i][mask], out["only_fg"][i][mask])
        assert (out["no_fg"][i][mask] == 0).all() and (out["no_fg"][i][~mask] == own).all()
        y0, y1, x0, x1 = fi.bounding_box(mask)
        assert (out["only_bg_b"][i][y0:y1, x0:x1] == 0).all()
        assert (out["only_bg_t"][i] == own).all()  # a flat photo tiles into itself
        for variant in ("mixed_same", "mixed_rand", "mixed_next"):
            np.testing.assert_array_equal(out[variant][i][mask], out["only_fg"][i][mask])  # same garment, same place
        assert (out["mixed_same"][i][~mask] == own).all()
        assert (out["mixed_next"][i][~mask] == 20 * ((c + 1) % fi.NUM_CLASSES + 1)).all()


def test_background_owners_are_class_correlated_at_the_given_rate():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(fi.NUM_CLASSES), 2000)
    for p in (0.0, 0.5, 1.0):
        owners = fi.background_owners(labels, p, rng)
        assert abs((owners == labels).mean() - p) < 0.02 and owners.min() >= 0 and owners.max() < fi.NUM_CLASSES
        others = owners[owners != labels]
        if len(others):  # the other photos are drawn uniformly
            assert np.bincount(others, minlength=fi.NUM_CLASSES).min() > 0.8 * len(others) / fi.NUM_CLASSES


def test_converter_needs_every_variant(tmp_path: Path):
    (tmp_path / "src" / "original" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match=r"lacks original/val, only_fg/val, .*pass the unzipped bg_challenge folder"):
        convert(tmp_path / "src", tmp_path / "out", WriteOptions())
    with pytest.raises(DataError, match="does not exist"):
        convert(tmp_path / "nowhere", tmp_path / "out", WriteOptions())


@pytest.mark.skipif(not HAVE_IDX, reason="Debian package dataset-fashion-mnist not installed")
def test_build_writes_every_split_and_its_png_tree_converts_the_same(tmp_path: Path):
    fi.build(tmp_path / "in9", train_per_class=3, val_per_class=2, png=tmp_path / "png")
    assert check_in9_root(str(tmp_path / "in9")) == fi.NUM_CLASSES
    train = check_dataset(str(tmp_path / "in9" / "train"), min_resolution=fi.CANVAS)
    assert train.num_samples == 27 and train.class_names == fi.CLASSES
    assert all(check_dataset(str(tmp_path / "in9" / v)).num_samples == 18 for v in VARIANTS)
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == sorted(VARIANTS)
    convert(tmp_path / "png", tmp_path / "converted", WriteOptions(write_mode="raw"))  # the bg_challenge layout
    assert check_in9_root(str(tmp_path / "converted")) == fi.NUM_CLASSES
    assert check_dataset(str(tmp_path / "converted" / "mixed_next")).num_samples == 18
