"""Resumable conversion of planned samples into FFCV ``.beton`` shards plus a manifest.

Samples are dealt to shards round-robin in their planned (sorted) order, so every shard is
a class-balanced slice. Each shard is written under a temporary name, its manifest part is
saved under ``.parts/``, and only then is the shard renamed into place: a killed run never
leaves a shard that looks whole, and a re-run keeps every finished shard.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

os.environ.setdefault("TQDM_DISABLE", "1")  # DatasetWriter's own tqdm bar; we draw a rich one

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.checksums import META_KEY, file_sha256
from data_prep.errors import DataError
from data_prep.manifest import (FORMAT_VERSION, MANIFEST, PARTS, PIXEL_STATS, read_meta, rows_to_table, shard_name, write_classes,
                                write_table_atomic, write_text_atomic, SCHEMA)
from data_prep.source_image import Decoded

WRITE_MODES = ("auto", "jpg", "raw")
RAW_MAX_SIDE = 64  # "auto": images whose stored longer side is at most this are stored raw (lossless)
AUTO_PROBES = 16  # "auto": decoded samples (spread over the split) that decide the mode


@dataclass(frozen=True)
class Item:
    """One planned sample: where it comes from and its class."""

    source: str  # file path (relative to the split root) or a synthetic id like "idx:123"
    label: int
    class_name: str


class SampleLoader(Protocol):
    def __call__(self, item: Item) -> Decoded: ...


@dataclass(frozen=True)
class WriteOptions:
    num_shards: int = 1  # shards for this split (more shards: finer resume, parallel writing)
    max_resolution: int | None = 256  # longer side cap in pixels (None keeps the source size)
    # "auto": raw when the stored images are small (longer side <= RAW_MAX_SIDE: JPEG artefacts
    # would shift the features of 28 px digits), else jpg; "jpg" (JPEG at jpeg_quality); "raw" (uint8 pixels)
    write_mode: str = "auto"
    jpeg_quality: int = 90
    workers: int = 1  # processes writing shards in parallel

    def __post_init__(self) -> None:
        if self.num_shards < 1:
            raise DataError(f"--shards must be >= 1, got {self.num_shards}")
        if self.write_mode not in WRITE_MODES:
            raise DataError(f"--write-mode must be one of {WRITE_MODES}, got {self.write_mode!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise DataError(f"--jpeg-quality must be in [1, 100], got {self.jpeg_quality}")
        if self.max_resolution is not None and self.max_resolution < 8:
            raise DataError(f"--max-resolution must be >= 8, got {self.max_resolution}")
        if self.workers < 1:
            raise DataError(f"--workers must be >= 1, got {self.workers}")


def add_write_arguments(ap: Any) -> None:
    """The :class:`WriteOptions` flags of a file converter's command line (argparse parser ``ap``)."""
    ap.add_argument("--shards", type=int, default=1, help="shards per split")
    ap.add_argument("--max-resolution", type=int, default=256, help="longer side cap in pixels (0 keeps source size)")
    ap.add_argument("--write-mode", choices=WRITE_MODES, default="auto",
                    help="auto (default): raw, lossless, when the stored longer side is <= 64 px, else jpg")
    ap.add_argument("--jpeg-quality", type=int, default=90)
    ap.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")


def write_options(args: Any) -> WriteOptions:
    """:class:`WriteOptions` from the flags of :func:`add_write_arguments` (validated: DataError)."""
    return WriteOptions(num_shards=args.shards, max_resolution=args.max_resolution or None,
                        write_mode=args.write_mode, jpeg_quality=args.jpeg_quality, workers=args.workers)


@dataclass
class Report:
    """What a conversion did: status counts and throughput."""

    out: str
    total: int = 0
    processed: int = 0  # samples decoded in this run (kept shards excluded)
    counts: dict[str, int] = field(default_factory=dict)
    shards_written: int = 0
    shards_kept: int = 0
    seconds: float = 0.0
    write_mode: str = ""  # the mode used ("auto" resolved)
    mean: tuple[float, ...] | None = None  # per-channel pixel mean / std in [0, 1] (None: not recorded)
    std: tuple[float, ...] | None = None

    @property
    def images_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


class _Images:
    """Indexable view for ``DatasetWriter.from_indexed_dataset``: (image [H, W, 3] uint8, label)."""

    def __init__(self, images: list[np.ndarray], labels: list[int]):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.images[i], self.labels[i]


class _NoBar:
    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


_WORKER: dict[str, Any] = {}


def die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this process when its parent dies (a SIGKILLed
    converter must not leave pool workers behind, still writing shards); a no-op elsewhere."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _init_worker(loader: SampleLoader, counter: Any) -> None:
    die_with_parent()
    _WORKER["loader"], _WORKER["counter"] = loader, counter


def _tick_shared() -> None:
    with _WORKER["counter"].get_lock():
        _WORKER["counter"].value += 1


def _write_shard(out: Path, shard_id: int, items: Sequence[Item], opts: WriteOptions,
                 loader: SampleLoader | None = None, tick: Callable[[], None] | None = None) -> dict[str, int]:
    """Decode ``items``, write shard ``shard_id`` (temp name, then rename), return status counts."""
    import ffcv.writer
    from ffcv.fields import IntField, RGBImageField
    from ffcv.writer import DatasetWriter

    ffcv.writer.tqdm = _NoBar  # DatasetWriter draws its own tqdm bar per shard; ours is the rich one

    loader = loader or _WORKER["loader"]
    tick = tick or _tick_shared
    name = shard_name(shard_id)
    rows, images, labels = [], [], []
    for item in items:
        dec = loader(item)
        ok = dec.image is not None
        rows.append(dict(shard=name if ok else "", index=len(images) if ok else -1, label=item.label,
                         class_name=item.class_name, source=item.source, bytes=dec.nbytes, status=dec.status,
                         reason=dec.reason, height=dec.image.shape[0] if ok else 0, width=dec.image.shape[1] if ok else 0))
        if ok:
            images.append(dec.image)
            labels.append(item.label)
        tick()
    final = out / name
    tmp = out / (name + ".tmp")
    if images:
        fields = {"image": RGBImageField(write_mode=opts.write_mode, max_resolution=None, jpeg_quality=opts.jpeg_quality),
                  "label": IntField()}
        # one writer process per shard keeps the file byte-for-byte reproducible; 2 MiB pages
        # waste little on small shards and still hold any image capped at <= 800 px (raw 800x800x3 < 2 MiB)
        small = opts.max_resolution is not None and opts.max_resolution <= 800
        DatasetWriter(str(tmp), fields, num_workers=1, page_size=(1 << 21) if small else (1 << 23)).from_indexed_dataset(_Images(images, labels), chunksize=256)
    # the checksum goes into the manifest part before the shard is renamed into place
    part_meta = {META_KEY: file_sha256(tmp), PIXEL_STATS: pixel_sums(images)} if images else None
    write_table_atomic(rows_to_table(rows, part_meta), out / PARTS / f"{name}.parquet")
    if images:
        os.replace(tmp, final)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


def pixel_sums(images: Sequence[np.ndarray]) -> dict[str, Any]:
    """Per-channel sums of pixel values (in [0, 1]) and of their squares, and the pixel count, of
    [H, W, 3] uint8 images: shard parts add up to the split's mean/std."""
    total, sq, n = np.zeros(3), np.zeros(3), 0
    for img in images:
        px = img.reshape(-1, img.shape[-1]).astype(np.float64) / 255.0
        total += px.sum(0)
        sq += np.square(px).sum(0)
        n += px.shape[0]
    return {"n": n, "sum": total.tolist(), "sumsq": sq.tolist()}


def mean_std(parts: Sequence[Mapping[str, Any]]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The split's per-channel mean and std from the shards' :func:`pixel_sums`; None if any is missing."""
    if not parts or any(not isinstance(p, Mapping) for p in parts):
        return None
    n = sum(p["n"] for p in parts)
    total = np.sum([p["sum"] for p in parts], axis=0)
    sq = np.sum([p["sumsq"] for p in parts], axis=0)
    mean = total / n
    std = np.sqrt(np.maximum(sq / n - mean ** 2, 0.0))
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def resolve_write_mode(items: Sequence[Item], opts: WriteOptions, loader: SampleLoader) -> WriteOptions:
    """``write_mode="auto"`` made concrete: decode up to AUTO_PROBES items spread over the split;
    raw (lossless) when every decoded one is at most RAW_MAX_SIDE on its longer side, else jpg."""
    if opts.write_mode != "auto":
        return opts
    step = max(1, len(items) // AUTO_PROBES)
    sides = [max(d.image.shape[:2]) for d in (loader(it) for it in list(items)[::step][:AUTO_PROBES])
             if d.image is not None]
    return replace(opts, write_mode="raw" if sides and max(sides) <= RAW_MAX_SIDE else "jpg")


def _shard_done(out: Path, shard_id: int) -> bool:
    part = out / PARTS / f"{shard_name(shard_id)}.parquet"
    if not part.exists():
        return False
    table = pq.read_table(part, columns=["shard"])
    has_rows = any(s for s in table.column("shard").to_pylist())
    return (out / shard_name(shard_id)).exists() or not has_rows


def _plan_fingerprint(items: Sequence[Item], classes: Sequence[str], opts: WriteOptions) -> dict[str, Any]:
    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.source}\t{it.label}\n".encode())
    o = asdict(opts)
    o.pop("workers")
    return {"format_version": FORMAT_VERSION, "options": o, "num_items": len(items),
            "items_sha256": h.hexdigest(), "classes_sha256": hashlib.sha256("\n".join(classes).encode()).hexdigest()}


def write_shards(items: Sequence[Item], classes: Sequence[str], out: str | Path, opts: WriteOptions,
                 loader: SampleLoader, title: str = "converting") -> Report:
    """Write ``items`` into ``out`` (created if needed) as shards + manifest; resumes a killed run.

    ``loader`` turns an :class:`Item` into a :class:`Decoded` image; it must be picklable when
    ``opts.workers > 1``.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out)
    if not items:
        raise DataError(f"no images to convert into {out}; check the source folder and the subset options")
    opts = resolve_write_mode(items, opts, loader)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    plan = _plan_fingerprint(items, classes, opts)
    plan_path = out / PARTS / "plan.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != plan:
            raise DataError(f"{out} holds a conversion with different inputs or options ({plan_path}); "
                            f"use a new output folder or delete {out}")
    else:
        write_text_atomic(json.dumps(plan, indent=1), plan_path)
    for stale in [*out.glob("*.tmp"), *(out / PARTS).glob("*.tmp")]:
        stale.unlink()

    num_shards = min(opts.num_shards, len(items))
    per_shard = [list(items[s::num_shards]) for s in range(num_shards)]
    todo = [s for s in range(num_shards) if not _shard_done(out, s)]
    report = Report(out=str(out), total=len(items), shards_kept=num_shards - len(todo), shards_written=len(todo),
                    processed=sum(len(per_shard[s]) for s in todo))
    start = time.perf_counter()
    columns = [TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn()]
    with Progress(*columns, transient=False) as progress:
        done_before = sum(len(per_shard[s]) for s in range(num_shards) if s not in todo)
        task = progress.add_task(title, total=len(items), completed=done_before, rate="")
        if opts.workers == 1 or len(todo) <= 1:
            n = [0]

            def tick() -> None:
                n[0] += 1
                if n[0] % 64 == 0:
                    el = time.perf_counter() - start
                    progress.update(task, advance=64, rate=f"{n[0] / el:,.0f} img/s")
            for s in todo:
                _write_shard(out, s, per_shard[s], opts, loader, tick)
            progress.update(task, completed=len(items))
        else:
            ctx = mp.get_context("fork")
            counter = ctx.Value("q", 0)
            with ProcessPoolExecutor(opts.workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(loader, counter)) as pool:
                pending = {pool.submit(_write_shard, out, s, per_shard[s], opts) for s in todo}
                while pending:
                    finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()
                    el = time.perf_counter() - start
                    progress.update(task, completed=done_before + counter.value,
                                    rate=f"{counter.value / max(el, 1e-9):,.0f} img/s")
    report.seconds = time.perf_counter() - start
    tables = [pq.read_table(out / PARTS / f"{shard_name(s)}.parquet") for s in range(num_shards)]
    checksums = {shard_name(s): _part_checksum(out, s, t) for s, t in enumerate(tables)
                 if (out / shard_name(s)).exists()}
    table = pa.concat_tables(tables).cast(SCHEMA)
    meta = {"max_resolution": opts.max_resolution, "write_mode": opts.write_mode, "jpeg_quality": opts.jpeg_quality,
            "format_version": FORMAT_VERSION, "num_shards": num_shards, META_KEY: checksums}
    stats = mean_std([read_meta(t).get(PIXEL_STATS) for s, t in enumerate(tables) if (out / shard_name(s)).exists()])
    if stats:
        meta["mean"], meta["std"] = report.mean, report.std = stats
    report.write_mode = opts.write_mode
    table = table.replace_schema_metadata({k: json.dumps(v) for k, v in meta.items()})
    write_classes(list(classes), out)
    write_table_atomic(table, out / MANIFEST)
    statuses = table.column("status").to_pylist()
    report.counts = {k: statuses.count(k) for k in ("ok", "converted", "skipped")}
    return report


def _part_checksum(out: Path, shard_id: int, part: pa.Table) -> str:
    """The shard's SHA-256 recorded in its manifest part; computed from the file for a part kept
    from a conversion started before checksums existed."""
    recorded = read_meta(part).get(META_KEY)
    return recorded if isinstance(recorded, str) else file_sha256(out / shard_name(shard_id))


def print_report(report: Report, skipped_examples: list[tuple[str, str]] | None = None) -> None:
    """One summary line per split, plus up to 5 skipped files with their reasons."""
    from rich.console import Console

    c = report.counts
    Console().print(f"[bold]{report.out}[/]: {report.total} files -> ok {c.get('ok', 0)}, converted {c.get('converted', 0)}, "
                    f"skipped {c.get('skipped', 0)}; shards written {report.shards_written}, kept {report.shards_kept}; "
                    f"{report.images_per_s:,.0f} img/s")
    stats = (f"; pixel mean {list(report.mean)} std {list(report.std)} (recorded in the manifest)"
             if report.mean and report.std else "")
    Console().print(f"  stored as {report.write_mode or '?'}{stats}", soft_wrap=True)
    for src, reason in (skipped_examples or [])[:5]:
        Console().print(f"  skipped {src}: {reason}")
