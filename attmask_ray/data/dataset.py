"""Cheap validation of a shards folder (no FFCV Loader): :func:`check_dataset`.

Called by the sweep driver before any cluster starts, so every failure is a one-line
:class:`DataError` naming the file and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_prep.errors import DataError
from data_prep.manifest import CLASSES, MANIFEST, SHARD_GLOB, read_meta

# The .beton header layout of ffcv 1.0.2 (ffcv/types.py), copied so that validating a
# dataset does not import ffcv/numba (seconds); tests assert they equal ffcv's own.
BETON_VERSION = 2
HEADER_TYPE = np.dtype([("version", "<u2"), ("num_fields", "<u2"), ("page_size", "<u4"),
                        ("num_samples", "<u8"), ("alloc_table_ptr", "<u8")], align=True)
ALLOC_TABLE_TYPE = np.dtype([("sample_id", "<u8"), ("ptr", "<u8"), ("size", "<u8")])

_BUILD_HINT = ("build it with `python -m data_prep.fashion_mnist data/fashion_mnist` "
               "or `python -m data_prep.imagefolder SRC OUT`")


@dataclass(frozen=True)
class DatasetInfo:
    """What a validated shards folder holds. Sample order = shards in list order, rows by index."""

    path: str
    num_samples: int
    num_classes: int
    class_names: list[str]
    shards: list[str]  # absolute .beton paths, sorted by name
    max_resolution: int  # largest stored image side in pixels
    shard_sizes: list[int] = field(default_factory=list)  # samples per shard (same order as shards)
    labels: np.ndarray | None = field(default=None, repr=False)  # [num_samples] int64 in dataset order
    converted_max_resolution: int | None = None  # the converter's longer-side cap (None: sources kept their size)

    def too_small_fix(self, key: str, size: int) -> str:
        """What to do when a ``size`` px crop (config ``key``) exceeds the stored images: re-converting
        helps only when the converter shrank them; a conversion cannot enlarge small sources."""
        cap = self.converted_max_resolution
        if cap is not None and self.max_resolution >= cap:
            return f"lower {key} or re-convert with --max-resolution >= {size} (the images were shrunk to {cap} px)"
        return (f"lower {key} to at most {self.max_resolution} (the source images are only that large; "
                "re-converting cannot enlarge them)")

    @property
    def shard_offsets(self) -> list[int]:
        """Global index of the first sample of each shard."""
        return [int(x) for x in np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]])] if self.shards else []


def _header(shard: Path, fix: str) -> tuple[int, int, np.ndarray]:
    """(num_samples, alloc_table_ptr, alloc_table) of a .beton, or a DataError if it is cut short."""
    size = shard.stat().st_size
    if size == 0:
        raise DataError(f"{shard} is empty; {fix}")
    if size < HEADER_TYPE.itemsize:
        raise DataError(f"{shard} is truncated ({size} bytes, no full header); {fix}")
    header = np.fromfile(shard, dtype=HEADER_TYPE, count=1)[0]
    if int(header["version"]) != BETON_VERSION:
        raise DataError(f"{shard} is not an FFCV v{BETON_VERSION} .beton (version {int(header['version'])}); {fix}")
    ptr = int(header["alloc_table_ptr"])
    if ptr == 0 or ptr > size or (size - ptr) % ALLOC_TABLE_TYPE.itemsize:
        raise DataError(f"{shard} is truncated or unfinished (allocation table at {ptr}, file {size} bytes); {fix}")
    table = np.fromfile(shard, dtype=ALLOC_TABLE_TYPE, offset=ptr)
    if len(table) and int((table["ptr"] + table["size"]).max()) > ptr:
        raise DataError(f"{shard} is truncated (sample data runs past the allocation table); {fix}")
    return int(header["num_samples"]), ptr, table


def check_dataset(path: str, min_resolution: int | None = None) -> DatasetInfo:
    """Validate the shards folder ``path`` and return its :class:`DatasetInfo`.

    Checks: folder, ``manifest.parquet`` and ``classes.txt`` exist; every shard named by the
    manifest exists, is non-empty, complete, and holds as many samples as the manifest says;
    no stray shard; labels within the class list; largest stored side >= ``min_resolution``.
    """
    import pyarrow.parquet as pq

    root = Path(path)
    fix = f"re-run the converter into {root} (finished shards are kept)"
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist; {_BUILD_HINT}")
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{manifest} is missing (conversion unfinished?); {fix}")
    try:
        table = pq.read_table(manifest)
    except Exception as exc:
        raise DataError(f"{manifest} is unreadable ({type(exc).__name__}); {fix}") from None
    missing = {"shard", "index", "label", "status", "height", "width"} - set(table.column_names)
    if missing:
        raise DataError(f"{manifest} lacks columns {sorted(missing)}; {fix}")
    classes_file = root / CLASSES
    if not classes_file.is_file():
        raise DataError(f"{classes_file} is missing; {fix}")
    class_names = [c for c in classes_file.read_text().splitlines() if c]
    if not class_names:
        raise DataError(f"{classes_file} is empty; {fix}")

    shard_col = np.asarray(table.column("shard").to_pylist(), dtype=object)
    kept = shard_col != ""
    labels_all = table.column("label").to_numpy()
    index_all = table.column("index").to_numpy()
    names = sorted(set(shard_col[kept].tolist()))
    on_disk = sorted(p.name for p in root.glob(SHARD_GLOB))
    stray = sorted(set(on_disk) - set(names))
    if stray:
        raise DataError(f"{root / stray[0]} is not listed in {manifest} (manifest does not match shards); {fix}")
    if not names:
        raise DataError(f"{manifest} lists no usable images; check the source and {fix}")

    sizes, labels = [], []
    for name in names:
        shard = root / name
        if not shard.is_file():
            raise DataError(f"{shard} is missing but listed in {manifest}; {fix}")
        rows = shard_col == name
        n_manifest = int(rows.sum())
        n_file, _, _ = _header(shard, fix)
        if n_file != n_manifest:
            raise DataError(f"{shard} holds {n_file} samples but {manifest} lists {n_manifest} (manifest does not match shards); {fix}")
        idx = index_all[rows]
        order = np.argsort(idx)
        if not np.array_equal(idx[order], np.arange(n_manifest)):
            raise DataError(f"{manifest} has bad row indices for {name}; {fix}")
        sizes.append(n_manifest)
        labels.append(labels_all[rows][order].astype(np.int64))
    labels_arr = np.concatenate(labels)
    if labels_arr.min() < 0 or labels_arr.max() >= len(class_names):
        raise DataError(f"{manifest} has labels outside 0..{len(class_names) - 1} of {classes_file}; {fix}")
    heights = table.column("height").to_numpy()[kept]
    widths = table.column("width").to_numpy()[kept]
    max_res = int(max(heights.max(), widths.max()))
    cap = read_meta(table).get("max_resolution")
    cap = int(cap) if isinstance(cap, (int, float)) and cap > 0 else None
    if min_resolution is not None and max_res < min_resolution:
        probe = DatasetInfo(str(root), 0, 0, [], [], max_res, converted_max_resolution=cap)
        raise DataError(f"{root} stores images of at most {max_res} px but a {min_resolution} px crop was asked; "
                        + probe.too_small_fix("data.global_crop_size", min_resolution))
    return DatasetInfo(path=str(root), num_samples=int(sum(sizes)), num_classes=len(class_names),
                       class_names=class_names, shards=[os.fspath((root / n).resolve()) for n in names],
                       max_resolution=max_res, shard_sizes=sizes, labels=labels_arr, converted_max_resolution=cap)
