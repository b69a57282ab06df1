"""Check shard payloads against their recorded checksums: ``python -m data_prep.verify PATH [PATH ...]``.

PATH is a shards folder (holding ``manifest.parquet``) or a folder of them (e.g. the OUT of
``data_prep.fashion_mnist``, with train/ and test/). Every shard the manifest lists is read
whole and its SHA-256 compared with the one recorded at conversion. Prints one line per bad
shard and exits 1 if there is any; otherwise one summary line per folder and exit 0. A
missing or unreadable manifest, or a missing shard, is one ``error:`` line and exit 2.
Shards converted before checksums existed cannot be checked: one line says so (exit 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.checksums import META_KEY, file_sha256
from data_prep.errors import DataError
from data_prep.manifest import MANIFEST, read_meta


@dataclass
class Verification:
    """Outcome for one shards folder; ``recorded`` is False for a manifest without checksums."""

    folder: str
    shards: int
    recorded: bool
    bad: list[tuple[str, str]] = field(default_factory=list)  # (shard path, why)

    def summary(self) -> str:
        """One line: what was checked and what was found."""
        if not self.recorded:
            return (f"{self.folder}: {self.shards} shard(s) converted before checksums existed; nothing to verify "
                    "(re-convert to record checksums)")
        if self.bad:
            return f"{self.folder}: {len(self.bad)} of {self.shards} shard(s) do not match their checksums"
        return f"{self.folder}: {self.shards} shard(s) match their checksums"


def verify_folder(path: str | Path, threads: int = 4) -> Verification:
    """Recompute the SHA-256 of every shard listed in ``path``'s manifest and compare."""
    import pyarrow.parquet as pq

    root = Path(path)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{manifest} is missing; pass a shards folder written by data_prep "
                        "(python -m data_prep.imagefolder or data_prep.fashion_mnist)")
    try:
        table = pq.read_table(manifest, columns=["shard"])
        meta = read_meta(table)
    except Exception as exc:  # noqa: BLE001 - any unreadable manifest is one line
        raise DataError(f"{manifest} is unreadable ({type(exc).__name__}); re-run the converter into {root}") from None
    names = sorted({s for s in table.column("shard").to_pylist() if s})
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DataError(f"{root / missing[0]} is missing but listed in {manifest}"
                        + (f" ({len(missing) - 1} more missing)" if len(missing) > 1 else "")
                        + f"; re-run the converter into {root} (finished shards are kept)")
    recorded = meta.get(META_KEY)
    if not isinstance(recorded, dict):
        return Verification(str(root), len(names), recorded=False)
    result = Verification(str(root), len(names), recorded=True)
    with ThreadPoolExecutor(max(1, threads)) as pool:  # hashlib releases the GIL on large reads
        actual = dict(zip(names, pool.map(lambda n: file_sha256(root / n), names)))
    for name in names:
        expected = recorded.get(name)
        if expected is None:
            result.bad.append((str(root / name), f"no checksum recorded in {manifest}"))
        elif actual[name] != expected:
            result.bad.append((str(root / name), f"SHA-256 {actual[name][:12]}... differs from the recorded "
                                                 f"{expected[:12]}... (contents changed since conversion)"))
    return result


def require_verified(path: str | Path, flag: str = "--verify-data") -> str:
    """``verify_folder`` as a gate before a run: the one-line summary when every shard matches
    (or none has a checksum recorded), else a DataError naming the first bad shard and the fix."""
    result = verify_folder(path)
    if result.bad:
        shard, why = result.bad[0]
        more = (f" (and {len(result.bad) - 1} more: python -m data_prep.verify {path} lists them)"
                if len(result.bad) > 1 else "")
        raise DataError(f"{flag}: {shard}: {why}{more}; re-convert {path}")
    return result.summary()


def shard_folders(path: str | Path) -> list[Path]:
    """``path`` itself when it holds a manifest, else its sub-folders that do; [path] when none
    do (so that the missing manifest is reported)."""
    root = Path(path)
    if (root / MANIFEST).is_file() or not root.is_dir():
        return [root]
    subs = sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file())
    return subs or [root]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m data_prep.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", metavar="PATH", help="shards folder (or a folder of shards folders)")
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1), help="files hashed in parallel")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    results = []
    try:
        for path in args.paths:
            results.extend(verify_folder(folder, args.threads) for folder in shard_folders(path))
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = [line for r in results for line in r.bad]
    for shard, why in bad:
        print(f"bad shard {shard}: {why}")
    for r in results:
        if not r.bad:
            print(r.summary())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
