"""Fixtures: a Fashion-MNIST subset converted once per session (photo fixtures: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.fashion_mnist import IDX_DIR, build


@pytest.fixture(scope="session")
def fmnist_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fashion-MNIST: train = first 20 per class (200), test = all 10,000."""
    if not (IDX_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    out = tmp_path_factory.mktemp("fmnist")
    build(out, train_subset=200)
    return out
