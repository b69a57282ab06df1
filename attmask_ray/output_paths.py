"""Whether an output path can be written, checked before any work starts.

Every CLI that writes (sweep storage, evaluate/floors results, report, export, viz, the data
converters) asks here first, so an output under a file, inside a read-only or virtual
filesystem, or a folder where a file is expected fails in one line before anything runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def output_problem(path: str | os.PathLike[str], kind: str = "file") -> str | None:
    """Why ``path`` cannot be written, or None when it can.

    ``kind="file"``: ``path`` is a file to create or overwrite (its folders are created);
    ``kind="dir"``: ``path`` is a folder to create or write into. The first existing ancestor
    must be a writable folder: probed by creating (and removing) a temporary file there, as
    permission bits say nothing for root or for virtual filesystems such as /proc.
    """
    p = Path(path).expanduser()
    if kind == "file" and p.is_dir():
        return f"{p} is a directory; give a file name"
    if kind == "dir" and p.exists() and not p.is_dir():
        return f"{p} is a file, not a folder"
    anc = p if (kind == "dir" and p.is_dir()) else p.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        return f"{anc} is a file, so {p} cannot be created under it"
    try:
        with tempfile.NamedTemporaryFile(dir=anc, prefix=".attmask_write_probe_"):
            pass
    except OSError as exc:
        return f"cannot write under {anc} ({exc.strerror or type(exc).__name__})"
    return None
