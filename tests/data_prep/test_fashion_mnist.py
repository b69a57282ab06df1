"""The embedded default dataset: Fashion-MNIST IDX files -> train/test shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from attmask_ray.data import DataError, check_dataset
from data_prep.fashion_mnist import CLASSES, IDX_DIR, build, read_idx

pytestmark = pytest.mark.skipif(not (IDX_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
                                reason="Debian package dataset-fashion-mnist not installed")


def test_subset_and_full_test_split(tmp_path: Path) -> None:
    build(tmp_path, train_subset=100)
    train = check_dataset(str(tmp_path / "train"), min_resolution=28)
    test = check_dataset(str(tmp_path / "test"))
    assert train.num_samples == 100 and test.num_samples == 10_000
    assert train.class_names == CLASSES and train.max_resolution == 28
    labels = read_idx(IDX_DIR / "train-labels-idx1-ubyte.gz")
    rows = pq.read_table(tmp_path / "train" / "manifest.parquet").to_pylist()
    picked = [int(r["source"].rsplit("#", 1)[1]) for r in rows]
    expected = [i for c in range(10) for i in np.flatnonzero(labels == c)[:10]]
    assert sorted(picked) == sorted(expected)  # the first 10 of each class, in file order
    assert all(labels[i] == r["label"] for i, r in zip(picked, rows))
    np.testing.assert_array_equal(np.bincount(test.labels, minlength=10), np.full(10, 1000))


def test_bad_subset_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="multiple of 10"):
        build(tmp_path, train_subset=15)
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        build(tmp_path, idx_dir=tmp_path / "none")


def test_class_slice_for_disjoint_retrieval_classes(tmp_path: Path) -> None:
    build(tmp_path / "late", train_subset=50, classes="5:10")
    train = check_dataset(str(tmp_path / "late" / "train"))
    test = check_dataset(str(tmp_path / "late" / "test"))
    assert train.num_samples == 50 and test.num_samples == 5_000
    assert train.class_names == test.class_names == CLASSES[5:]
    np.testing.assert_array_equal(np.bincount(test.labels), np.full(5, 1000))  # relabelled 0..4
    rows = pq.read_table(tmp_path / "late" / "test" / "manifest.parquet").to_pylist()
    labels = read_idx(IDX_DIR / "t10k-labels-idx1-ubyte.gz")
    assert all(labels[int(r["source"].rsplit("#", 1)[1])] == r["label"] + 5 for r in rows)
    with pytest.raises(DataError, match="--classes must be A:B"):
        build(tmp_path / "x", classes="five")
    with pytest.raises(DataError, match="keeps none"):
        build(tmp_path / "y", classes="10:")
    with pytest.raises(DataError, match="multiple of 5"):
        build(tmp_path / "z", train_subset=12, classes=":5")
