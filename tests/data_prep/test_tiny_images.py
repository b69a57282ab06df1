"""Images smaller than any crop are skipped with a reason, like other bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from attmask_ray.data import check_dataset
from data_prep.imagefolder import convert
from data_prep.manifest import MANIFEST
from data_prep.shard_writer import WriteOptions
from data_prep.source_image import MIN_SIDE, decode_file


def _save(path: Path, h: int, w: int, fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(h * w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format=fmt)
    path.write_bytes(buf.getvalue())


def test_tiny_images_are_skipped_with_a_reason(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _save(src / "a" / "one_pixel.JPEG", 1, 1)
    _save(src / "a" / "one_pixel.png", 1, 1, "PNG")
    _save(src / "a" / "thin.JPEG", MIN_SIDE - 1, 40)
    _save(src / "a" / "banner.png", 12, 400, "PNG")  # 2 px high once shrunk to max side 64
    _save(src / "a" / "smallest_ok.png", MIN_SIDE, MIN_SIDE, "PNG")
    _save(src / "b" / "normal.JPEG", 48, 64)
    assert decode_file(src / "a" / "one_pixel.JPEG").reason == f"too small: 1x1 px (shorter side under {MIN_SIDE} px)"
    convert(src, tmp_path / "out", WriteOptions(num_shards=1, max_resolution=64))
    rows = {Path(r["source"]).name: r for r in pq.read_table(tmp_path / "out" / MANIFEST).to_pylist()}
    for name in ("one_pixel.JPEG", "one_pixel.png", "thin.JPEG", "banner.png"):
        assert rows[name]["status"] == "skipped" and rows[name]["shard"] == "", name
        assert rows[name]["reason"].startswith("too small") and f"under {MIN_SIDE} px" in rows[name]["reason"], name
    assert "once shrunk to max side 64" in rows["banner.png"]["reason"]
    assert rows["smallest_ok.png"]["status"] == "ok" and rows["normal.JPEG"]["status"] == "ok"
    assert check_dataset(str(tmp_path / "out")).num_samples == 2
