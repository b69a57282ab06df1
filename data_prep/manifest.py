"""On-disk format of a shards folder: ``manifest.parquet`` + ``classes.txt`` + ``shard-NNNNN.beton``.

One manifest row per source file considered (kept or skipped)::

    shard       str    shard file name ("" when skipped)
    index       int64  row inside that shard (-1 when skipped)
    label       int32  class id (line number in classes.txt)
    class_name  str
    source      str    source path (relative to the converted split when possible)
    bytes       int64  source file size
    status      str    "ok" | "converted" (fixed on the way, e.g. CMYK) | "skipped"
    reason      str    why converted/skipped ("" when ok)
    height      int32  stored height (0 when skipped)
    width       int32  stored width  (0 when skipped)

Schema metadata (bytes -> bytes, JSON values) records ``max_resolution``, ``write_mode``,
``jpeg_quality``, ``format_version``, ``num_shards`` and ``shard_sha256`` ({shard file name:
SHA-256 hex of the whole file}, see :mod:`data_prep.checksums`; absent in manifests written
before checksums existed), and ``mean`` / ``std`` (per-channel pixel statistics in [0, 1] of the
stored images, for normalisation; absent in older manifests). Each shard's part under
``.parts/`` records its SHA-256 and ``pixel_stats`` (sums the split's mean/std are built from).
Dataset order = shards sorted by name, rows by
``index``; that order defines the global sample index used by eval loaders.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.parquet"
CLASSES = "classes.txt"
PARTS = ".parts"  # per-shard manifest parts, written before the shard is renamed into place
FORMAT_VERSION = 1
PIXEL_STATS = "pixel_stats"
SHARD_GLOB = "shard-*.beton"

SCHEMA = pa.schema([
    ("shard", pa.string()), ("index", pa.int64()), ("label", pa.int32()), ("class_name", pa.string()),
    ("source", pa.string()), ("bytes", pa.int64()), ("status", pa.string()), ("reason", pa.string()),
    ("height", pa.int32()), ("width", pa.int32()),
])
COLUMNS = tuple(SCHEMA.names)


def shard_name(i: int) -> str:
    """File name of shard ``i``."""
    return f"shard-{i:05d}.beton"


def rows_to_table(rows: Iterable[Mapping[str, Any]], meta: Mapping[str, Any] | None = None) -> pa.Table:
    """Build a manifest table from row dicts with the :data:`COLUMNS` keys."""
    rows = list(rows)
    table = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=SCHEMA)
    if meta:
        table = table.replace_schema_metadata({k: json.dumps(v) for k, v in meta.items()})
    return table


def write_table_atomic(table: pa.Table, path: str | Path) -> None:
    """Write a Parquet file to a temporary name, then rename it: a killed run never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_text_atomic(text: str, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_meta(table: pa.Table | pa.Schema) -> dict[str, Any]:
    """The manifest's schema metadata as plain values (from a table or just its schema)."""
    schema = table if isinstance(table, pa.Schema) else table.schema
    raw = schema.metadata or {}
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def read_mean_std(folder: str | Path) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The per-channel pixel mean and std recorded at conversion in ``folder``'s manifest, or None
    (no manifest, or one written before statistics were recorded)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    meta = read_meta(pq.read_schema(path))
    mean, std = meta.get("mean"), meta.get("std")
    return (tuple(mean), tuple(std)) if mean and std else None


def write_classes(classes: list[str], folder: str | Path) -> None:
    write_text_atomic("".join(f"{c}\n" for c in classes), Path(folder) / CLASSES)
