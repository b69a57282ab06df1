"""Convert an ImageFolder tree into FFCV shards: ``python -m data_prep.imagefolder SRC OUT``.

SRC in ImageNet layout (``SRC/train/<class>/*.JPEG``, ``SRC/val/<class>/*``) gives
``OUT/train`` and ``OUT/val``; a SRC holding class folders directly gives one split in OUT.
Subsets (paper: 20% of ImageNet-1k = first 260 per class in sorted order) apply to train:
``--per-class K`` keeps the first K files of each class, ``--fraction X`` the first X of
each class, ``--offset O`` skips the first O per class first (few-shot slices: ``--offset
t*nu --per-class nu``). ``--classes A:B`` keeps the sorted class folders A..B-1 in every split
(relabelled from 0): the retrieval protocol's unseen classes, e.g. CUB-200 ``--classes 100:``
(classes 101-200), Cars-196 ``--classes 98:``. Example::

    python -m data_prep.imagefolder /data/imagenet data/in1k_20pct --fraction 0.2 --shards 64 \
        --max-resolution 256 --workers 8
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from attmask_ray.output_paths import output_problem
from data_prep.cli_errors import run_reporting_errors
from data_prep.errors import DataError
from data_prep.shard_writer import (Item, WriteOptions, add_write_arguments, print_report, write_options,
                                    write_shards)
from data_prep.source_image import Decoded, decode_file

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Subset:
    """Per-class selection in sorted order: skip ``offset``, then keep ``per_class`` or ``fraction``."""

    per_class: int | None = None
    fraction: float | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if self.per_class is not None and self.fraction is not None:
            raise DataError("give either --per-class or --fraction, not both")
        if self.per_class is not None and self.per_class < 1:
            raise DataError(f"--per-class must be >= 1, got {self.per_class}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise DataError(f"--fraction must be in (0, 1], got {self.fraction}")
        if self.offset < 0:
            raise DataError(f"--offset must be >= 0, got {self.offset}")

    def select(self, files: list[str]) -> list[str]:
        """Files of ONE class in sorted order -> the kept ones."""
        rest = files[self.offset:]
        if self.per_class is not None:
            return rest[:self.per_class]
        if self.fraction is not None:
            return rest[:max(1, int(math.floor(self.fraction * len(files) + 0.5)))]
        return rest


class FileLoader:
    """Picklable sample loader: decodes ``root / item.source``."""

    def __init__(self, root: Path, max_resolution: int | None):
        self.root, self.max_resolution = root, max_resolution

    def __call__(self, item: Item) -> Decoded:
        return decode_file(self.root / item.source, self.max_resolution)


def list_classes(split: Path) -> list[str]:
    classes = sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{split} has no class folders; expected {split}/<class>/<image> (ImageFolder layout)")
    return classes


def class_slice(classes: list[str], text: str | None) -> list[str]:
    """The sorted class folders kept by ``--classes A:B`` (a Python slice; None keeps all)."""
    if text is None:
        return classes
    try:
        a, b = (int(x) if x.strip() else None for x in text.split(":"))
    except ValueError:
        raise DataError(f"--classes must be A:B (a slice of the {len(classes)} sorted classes), got {text!r}") from None
    kept = classes[a:b]
    if not kept:
        raise DataError(f"--classes {text} keeps none of the {len(classes)} classes")
    return kept


def plan_split(split: Path, classes: list[str], subset: Subset, known: list[str] | None = None) -> list[Item]:
    """Items of one split in sorted (class, file) order after the subset; classes outside ``known``
    (default: ``classes``) raise, known ones outside ``classes`` are left out."""
    present = list_classes(split)
    unknown = sorted(set(present) - set(known or classes))
    if unknown:
        raise DataError(f"{split} has class folders missing from the train split ({unknown[:3]}...); "
                        "convert with matching class folders")
    items = []
    for label, name in enumerate(classes):
        folder = split / name
        if not folder.is_dir():
            continue
        files = sorted(p.relative_to(split).as_posix() for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        items.extend(Item(f, label, name) for f in subset.select(files))
    return items


def convert(src: str | Path, out: str | Path, opts: WriteOptions, subset: Subset = Subset(),
            classes: str | None = None) -> dict[str, object]:
    """Convert every split of ``src`` into ``out``; returns {split: Report}."""
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"source folder {src} does not exist; pass an ImageFolder root (SRC/train/<class>/...)")
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise DataError(f"output {out} and source {src} overlap (one holds the other); write the shards to a "
                        "folder outside the source tree")
    if problem := output_problem(out, kind="dir"):
        raise DataError(f"output {out}: {problem}; choose another OUT folder")
    splits = [s for s in ("train", "val") if (src / s).is_dir()]
    pairs = [(src / s, out / s, s) for s in splits] if splits else [(src, out, "train")]
    every = list_classes(pairs[0][0])
    kept = class_slice(every, classes)
    reports = {}
    for split_dir, split_out, name in pairs:
        items = plan_split(split_dir, kept, subset if name == "train" else Subset(), known=every)
        report = write_shards(items, kept, split_out, opts, FileLoader(split_dir, opts.max_resolution),
                              title=f"{name}")
        import pyarrow.parquet as pq
        m = pq.read_table(split_out / "manifest.parquet", columns=["source", "status", "reason"]).to_pylist()
        print_report(report, [(r["source"], r["reason"]) for r in m if r["status"] == "skipped"])
        reports[name] = report
    return reports


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m data_prep.imagefolder", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="ImageFolder root (with train/ and val/, or class folders directly)")
    ap.add_argument("out", help="output folder (one shards folder per split)")
    add_write_arguments(ap)
    ap.add_argument("--per-class", type=int, default=None, help="keep the first K files of each train class")
    ap.add_argument("--fraction", type=float, default=None, help="keep the first X (0-1] of each train class")
    ap.add_argument("--offset", type=int, default=0, help="skip the first O files of each train class")
    ap.add_argument("--classes", default=None, help="keep the sorted class folders A..B-1 only (a slice: :100, 100:)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def action() -> None:
        convert(args.src, args.out, write_options(args), Subset(args.per_class, args.fraction, args.offset), args.classes)

    return run_reporting_errors(action)


if __name__ == "__main__":
    sys.exit(main())
