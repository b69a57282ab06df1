"""Embedded default dataset: ``python -m data_prep.fashion_mnist OUT [--train-subset N]``.

Fashion-MNIST (70,000 real 28x28 grayscale photos of clothing, 10 classes, MIT licence) as
shipped by the Debian package ``dataset-fashion-mnist`` (IDX files under
/usr/share/datasets/fashion-mnist). Writes OUT/train (60k) and OUT/test (10k), each a shards
folder; images are stored raw as 28x28 RGB (gray replicated). ``--train-subset N`` keeps the
first N/10 images of each class in file order. ``--classes A:B`` keeps only classes A..B-1
(a Python slice of the 10, relabelled from 0), e.g. the retrieval protocol's disjoint classes:
pre-train on ``--classes 0:5``, retrieve on the test split of ``--classes 5:10``.
The smoke sweep uses data/fashion_mnist.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

from attmask_ray.output_paths import output_problem
from data_prep.cli_errors import run_reporting_errors
from data_prep.errors import DataError
from data_prep.imagefolder import class_slice
from data_prep.shard_writer import Item, WriteOptions, print_report, write_shards
from data_prep.source_image import Decoded

IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
SPLITS = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file into an array (images [N, 28, 28] uint8, labels [N] uint8)."""
    if not path.exists():
        raise DataError(f"{path} is missing; install the Debian package dataset-fashion-mnist "
                        "(apt-get install dataset-fashion-mnist) or pass --idx-dir")
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError; a cut file ends early
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}); reinstall dataset-fashion-mnist") from None
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DataError(f"{path} is not a uint8 IDX file; reinstall dataset-fashion-mnist")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated ({data.size} of {int(np.prod(dims))} values); reinstall dataset-fashion-mnist")
    return data.reshape(dims)


class ArrayLoader:
    """Sample loader over in-memory IDX images: item.source = "<file>#<row>"."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __call__(self, item: Item) -> Decoded:
        row = int(item.source.rsplit("#", 1)[1])
        gray = self.images[row]
        return Decoded(np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)), "ok", "", gray.nbytes)


def parse_classes(text: str | None) -> range:
    """'A:B' (a slice of the 10 classes) -> the kept class indices; None -> all 10."""
    kept = class_slice(CLASSES, text)
    return range(CLASSES.index(kept[0]), CLASSES.index(kept[-1]) + 1)


def split_items(labels: np.ndarray, source: str, per_class: int | None, classes: range = range(len(CLASSES))) -> list[Item]:
    """Items in file order of the kept ``classes`` (relabelled from 0); with ``per_class`` only the
    first ``per_class`` rows of each class."""
    seen = np.zeros(len(CLASSES), dtype=np.int64)
    items = []
    for row, lab in enumerate(labels.tolist()):
        if lab not in classes:
            continue
        if per_class is not None:
            if seen[lab] >= per_class:
                continue
            seen[lab] += 1
        items.append(Item(f"{source}#{row}", classes.index(lab), CLASSES[lab]))
    return items


def build(out: str | Path, train_subset: int | None = None, idx_dir: str | Path = IDX_DIR, shards: int = 1,
          classes: str | None = None) -> dict:
    """Write OUT/train and OUT/test; returns {split: Report}."""
    kept = parse_classes(classes)
    if train_subset is not None and (train_subset < len(kept) or train_subset % len(kept)):
        raise DataError(f"--train-subset must be a positive multiple of {len(kept)} (the kept classes), got {train_subset}")
    idx_dir, out = Path(idx_dir), Path(out)
    if problem := output_problem(out, kind="dir"):
        raise DataError(f"output {out}: {problem}; choose another OUT folder")
    reports = {}
    for split, stem in SPLITS.items():
        img_file, lab_file = f"{stem}-images-idx3-ubyte.gz", f"{stem}-labels-idx1-ubyte.gz"
        images, labels = read_idx(idx_dir / img_file), read_idx(idx_dir / lab_file)
        if len(images) != len(labels):
            raise DataError(f"{idx_dir / img_file} and {lab_file} disagree on the sample count; reinstall dataset-fashion-mnist")
        per_class = train_subset // len(kept) if (split == "train" and train_subset) else None
        if per_class is not None and per_class > (have := int(np.bincount(labels, minlength=len(CLASSES)).min())):
            raise DataError(f"--train-subset {train_subset} asks for {per_class} images per class but the train split "
                            f"has {have} per class; pass at most {have * len(kept)}")
        items = split_items(labels, img_file, per_class, kept)
        opts = WriteOptions(num_shards=shards, max_resolution=None, write_mode="raw", workers=1)
        reports[split] = write_shards(items, [CLASSES[c] for c in kept], out / split, opts, ArrayLoader(images),
                                      title=f"fashion-mnist {split}")
        print_report(reports[split])
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.fashion_mnist", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder; gets train/ and test/ shards folders")
    ap.add_argument("--train-subset", type=int, default=None, help="keep the first N/10 train images per class "
                    "(N/C with --classes keeping C classes)")
    ap.add_argument("--classes", default=None, help="keep classes A..B-1 only, relabelled from 0 (a slice: 0:5, 5:10)")
    ap.add_argument("--idx-dir", default=str(IDX_DIR), help="folder with the *-ubyte.gz IDX files")
    ap.add_argument("--shards", type=int, default=1, help="shards per split")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: build(args.out, args.train_subset, args.idx_dir, args.shards, args.classes))


if __name__ == "__main__":
    sys.exit(main())
