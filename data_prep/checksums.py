"""Shard payload checksums: the SHA-256 of every ``.beton`` file, recorded in the manifest.

A shard's header and allocation table can be intact while its image bytes are not (a bad
copy, a disk error, an overwrite); only a checksum of the whole file notices. The converter
records ``{shard name: sha256 hex}`` under the manifest's schema metadata key
:data:`META_KEY`; :mod:`data_prep.verify` recomputes and compares them. Manifests written
before checksums existed have no such key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

META_KEY = "shard_sha256"
_BLOCK = 8 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 8 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()
