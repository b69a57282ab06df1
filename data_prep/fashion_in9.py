"""A small-scale analogue of ImageNet-9 (Table 4) from Fashion-MNIST: ``python -m data_prep.fashion_in9 OUT``.

Not IN-9: a stand-in with the same construction, so the ``in9`` task runs here. Fashion-MNIST
garments come with exact foreground masks (their non-zero pixels); each 28 px garment is pasted
at a seeded random position on a 42 px grayscale background cut from real photos shipped in
scikit-image / scikit-learn (``data_prep.sample_photos``). Nine classes (Fashion-MNIST 0-8; ankle
boot is left out so that each class owns one of the nine photos), as in IN-9. Backgrounds are
class-correlated, as ImageNet's dogs on grass: an image of class c is on a crop of photo c with
probability ``--bg-correlation`` (default 0.5), else on one of the other eight photos (uniformly),
so the background alone predicts the class about half the time. With 1.0 every background names
its class and a linear probe may ignore the garment entirely.
The variants of each val image, made as IN-9 defines them:

* ``original``: the garment on its (class-correlated) background;  ``only_fg``: the garment on black;
* ``no_fg``: the original background with the garment's pixels black;
* ``only_bg_b``: the original background with the garment's bounding box black;
* ``only_bg_t``: the original background with the bounding box filled by tiles of the rest of it;
* ``mixed_same`` / ``mixed_rand`` / ``mixed_next``: the garment (same place) on the ``only_bg_t``
  background of another val image of the same class / of any class / of the next class (c + 1 mod 9).

Writes OUT/train (Original train: the first ``--train-per-class`` train images per class) and
OUT/<variant> (the first ``--val-per-class`` test images per class), raw 42 px RGB (gray
replicated); ``--png DIR`` also writes the same images as PNGs in the bg_challenge layout
(``DIR/original/train/<class>/``, ``DIR/<variant>/val/<class>/``), which ``data_prep.in9`` converts.
Evaluate with ``python -m attmask_ray.evaluate CKPT --tasks in9 --set eval.in9_root=OUT``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from attmask_ray.output_paths import output_problem
from data_prep.cli_errors import run_reporting_errors
from data_prep.errors import DataError
from data_prep.fashion_mnist import CLASSES as FASHION_CLASSES, IDX_DIR, ArrayLoader, read_idx
from data_prep.in9 import TRAIN, VARIANTS
from data_prep.sample_photos import photo_crop, source_photos
from data_prep.shard_writer import Item, WriteOptions, print_report, write_shards

CANVAS = 42  # background side in pixels; the 28 px garment covers at most 2/3 of it
NUM_CLASSES = 9
CLASSES = [f"{c:02d}_{FASHION_CLASSES[c]}" for c in range(NUM_CLASSES)]


def gray_backgrounds(photos: list[np.ndarray], owners: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One [CANVAS, CANVAS] uint8 crop of photo ``owners[i]`` per image -> [N, CANVAS, CANVAS]."""
    out = np.empty((len(owners), CANVAS, CANVAS), dtype=np.uint8)
    for i, owner in enumerate(owners.tolist()):
        out[i] = cv2.cvtColor(photo_crop(photos[owner], rng, (CANVAS, CANVAS)), cv2.COLOR_RGB2GRAY)
    return out


def background_owners(labels: np.ndarray, correlation: float, rng: np.random.Generator) -> np.ndarray:
    """The photo of each image's background: its class's photo with probability ``correlation``,
    else one of the other photos, uniformly -> [N] photo indices."""
    other = (labels + rng.integers(1, NUM_CLASSES, size=len(labels))) % NUM_CLASSES
    return np.where(rng.random(len(labels)) < correlation, labels, other)


def paste(background: np.ndarray, garment: np.ndarray, y: int, x: int) -> np.ndarray:
    """``garment`` [28, 28] pasted at (y, x) on ``background`` [CANVAS, CANVAS]: its non-zero pixels
    (the foreground mask) replace the background, everything else stays."""
    out = background.copy()
    h, w = garment.shape
    region = out[y:y + h, x:x + w]
    region[garment > 0] = garment[garment > 0]
    return out


def canvas_mask(garment: np.ndarray, y: int, x: int) -> np.ndarray:
    """The garment's foreground mask [CANVAS, CANVAS] bool at (y, x)."""
    mask = np.zeros((CANVAS, CANVAS), dtype=bool)
    mask[y:y + garment.shape[0], x:x + garment.shape[1]] = garment > 0
    return mask


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1), end-exclusive, of the True pixels of ``mask`` [H, W] (empty mask: all zero)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return 0, 0, 0, 0
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def tile_fill(background: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``background`` with the box filled by repeating the largest strip of background outside it
    (above, below, left or right of the box): IN-9's Only-BG-T."""
    y0, y1, x0, x1 = box
    out = background.copy()
    if y1 <= y0 or x1 <= x0:
        return out
    strips = [background[:y0], background[y1:], background[:, :x0], background[:, x1:]]
    tile = max(strips, key=lambda s: s.size)
    if tile.size == 0:  # the box covers the whole canvas: nothing to tile from
        out[y0:y1, x0:x1] = 0
        return out
    h, w = y1 - y0, x1 - x0
    reps = (-(-h // tile.shape[0]), -(-w // tile.shape[1]))
    out[y0:y1, x0:x1] = np.tile(tile, reps)[:h, :w]
    return out


def val_variants(garments: np.ndarray, labels: np.ndarray, photos: list[np.ndarray], owners: np.ndarray,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """garments [N, 28, 28] uint8, labels [N], owners [N] (each background's photo) ->
    {variant: images [N, CANVAS, CANVAS] uint8}."""
    n = len(labels)
    spots = rng.integers(0, CANVAS - 28 + 1, size=(n, 2))
    bgs = gray_backgrounds(photos, owners, rng)
    out = {v: np.empty((n, CANVAS, CANVAS), dtype=np.uint8) for v in VARIANTS}
    for i in range(n):
        y, x = spots[i]
        mask = canvas_mask(garments[i], y, x)
        box = bounding_box(mask)
        out["original"][i] = paste(bgs[i], garments[i], y, x)
        out["only_fg"][i] = paste(np.zeros_like(bgs[i]), garments[i], y, x)
        out["no_fg"][i] = np.where(mask, 0, bgs[i])
        only_b = bgs[i].copy()
        only_b[box[0]:box[1], box[2]:box[3]] = 0
        out["only_bg_b"][i] = only_b
        out["only_bg_t"][i] = tile_fill(bgs[i], box)
    by_class = {c: np.flatnonzero(labels == c) for c in range(NUM_CLASSES)}
    for i in range(n):
        c = int(labels[i])
        same = by_class[c][by_class[c] != i] if len(by_class[c]) > 1 else by_class[c]
        donors = {"mixed_same": rng.choice(same), "mixed_rand": rng.integers(0, n),
                  "mixed_next": rng.choice(by_class[(c + 1) % NUM_CLASSES])}
        y, x = spots[i]
        for variant, j in donors.items():
            out[variant][i] = paste(out["only_bg_t"][j], garments[i], y, x)
    return out


def first_per_class(labels: np.ndarray, per_class: int, split: str) -> np.ndarray:
    """Row indices of the first ``per_class`` images of each of the 9 classes, in file order."""
    rows = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise DataError(f"the Fashion-MNIST {split} split has {len(idx)} images of class {c}, asked for {per_class}")
        rows.append(idx[:per_class])
    return np.sort(np.concatenate(rows))


def write_png_tree(root: Path, split_images: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """The bg_challenge layout: root/original/train/<class>/ and root/<variant>/val/<class>/."""
    for name, (images, labels) in split_images.items():
        folder = root / ("original/train" if name == TRAIN else f"{name}/val")
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            (folder / CLASSES[label]).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / CLASSES[label] / f"{i:05d}.png"), image)


def build(out: str | Path, train_per_class: int = 500, val_per_class: int = 100, idx_dir: str | Path = IDX_DIR,
          seed: int = 0, png: str | Path | None = None, bg_correlation: float = 0.5) -> dict:
    """Write OUT/train and OUT/<variant> for every IN-9 variant; returns {split: Report}."""
    out, idx_dir = Path(out), Path(idx_dir)
    if train_per_class < 1 or val_per_class < 2:
        raise DataError(f"--train-per-class must be >= 1 and --val-per-class >= 2, got {train_per_class}, {val_per_class}")
    if not 0.0 <= bg_correlation <= 1.0:
        raise DataError(f"--bg-correlation must be in [0, 1], got {bg_correlation}")
    for target in (out, png):
        if target is not None and (problem := output_problem(target, kind="dir")):
            raise DataError(f"output {target}: {problem}; choose another folder")
    photos = list(source_photos().values())[:NUM_CLASSES]
    rng = np.random.default_rng(seed)
    tr_img, tr_lab = read_idx(idx_dir / "train-images-idx3-ubyte.gz"), read_idx(idx_dir / "train-labels-idx1-ubyte.gz")
    va_img, va_lab = read_idx(idx_dir / "t10k-images-idx3-ubyte.gz"), read_idx(idx_dir / "t10k-labels-idx1-ubyte.gz")
    tr_rows, va_rows = first_per_class(tr_lab, train_per_class, "train"), first_per_class(va_lab, val_per_class, "test")
    tr_labels, va_labels = tr_lab[tr_rows].astype(np.int64), va_lab[va_rows].astype(np.int64)
    spots = rng.integers(0, CANVAS - 28 + 1, size=(len(tr_rows), 2))
    bgs = gray_backgrounds(photos, background_owners(tr_labels, bg_correlation, rng), rng)
    train = np.stack([paste(bgs[i], tr_img[r], *spots[i]) for i, r in enumerate(tr_rows)])
    splits = {TRAIN: (train, tr_labels)}
    owners = background_owners(va_labels, bg_correlation, rng)
    splits |= {v: (imgs, va_labels) for v, imgs in val_variants(va_img[va_rows], va_labels, photos, owners, rng).items()}
    if png is not None:
        write_png_tree(Path(png), splits)
    opts = WriteOptions(num_shards=1, max_resolution=None, write_mode="raw", workers=1)
    reports = {}
    for name, (images, labels) in splits.items():
        items = [Item(f"{name}#{i}", int(lab), CLASSES[lab]) for i, lab in enumerate(labels.tolist())]
        reports[name] = write_shards(items, CLASSES, out / name, opts, ArrayLoader(images), title=f"fashion-in9 {name}")
        print_report(reports[name])
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.fashion_in9", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder: train/ and one shards folder per IN-9 variant")
    ap.add_argument("--train-per-class", type=int, default=500, help="Original train images per class (default 500)")
    ap.add_argument("--val-per-class", type=int, default=100, help="val images per class in every variant (default 100)")
    ap.add_argument("--idx-dir", default=str(IDX_DIR), help="folder with the Fashion-MNIST *-ubyte.gz IDX files")
    ap.add_argument("--seed", type=int, default=0, help="seed of the positions, crops and donor backgrounds")
    ap.add_argument("--png", default=None, help="also write the images as PNGs in the bg_challenge layout here")
    ap.add_argument("--bg-correlation", type=float, default=0.5,
                    help="probability that an image's background is its class's photo (default 0.5)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors(lambda: build(args.out, args.train_per_class, args.val_per_class, args.idx_dir,
                                              args.seed, args.png, args.bg_correlation))


if __name__ == "__main__":
    sys.exit(main())
