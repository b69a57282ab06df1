"""Read one source image file into an RGB uint8 array, fixing what can be fixed.

CMYK, high-bit-depth grayscale, palette and alpha images are converted to RGB (status
"converted"); 8-bit grayscale is replicated to 3 channels, which loses nothing (status "ok"); a PNG (or other format)
disguised as ``.JPEG`` is decoded by its real format. Empty, corrupt and truncated files
cannot be fixed and are reported with a reason instead of raising, and so are images
whose shorter side is under :data:`MIN_SIDE` pixels (as found or once shrunk to the
maximum resolution): smaller than any crop a model would be trained or evaluated on.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

MIN_SIDE = 8  # px; a shorter side below this is too small for any crop (it would only be upscaled noise)
_JPEG_EXT = {".jpg", ".jpeg", ".jpe"}
_EXT_FORMAT = {".png": "PNG", ".bmp": "BMP", ".gif": "GIF", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}


@dataclass(frozen=True)
class Decoded:
    """Outcome for one file: ``image`` [H, W, 3] uint8 (None when skipped), status and reason."""

    image: np.ndarray | None
    status: str  # "ok" | "converted" | "skipped"
    reason: str
    nbytes: int


def fit_max_side(image: np.ndarray, max_resolution: int | None) -> np.ndarray:
    """Shrink [H, W, 3] so that max(H, W) <= max_resolution (area interpolation; never enlarges)."""
    if max_resolution is None:
        return image
    h, w = image.shape[:2]
    ratio = max_resolution / max(h, w)
    if ratio >= 1:
        return image
    size = (max(1, int(w * ratio)), max(1, int(h * ratio)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def decode_file(path: str | Path, max_resolution: int | None = None) -> Decoded:
    """Decode ``path`` to RGB, shrunk to ``max_resolution`` on the longer side."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Decoded(None, "skipped", f"unreadable: {exc.strerror or exc}", 0)
    if not data:
        return Decoded(None, "skipped", "empty file", 0)
    reasons: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            fmt = img.format or "unknown"
            ext = path.suffix.lower()
            expected = "JPEG" if ext in _JPEG_EXT else _EXT_FORMAT.get(ext)
            if expected is not None and fmt != expected:
                reasons.append(f"{fmt} disguised as {ext}")
            if fmt == "JPEG" and max_resolution is not None:
                img.draft("RGB", (max_resolution, max_resolution))  # DCT-domain downscale: faster decode
            img.load()
    except Exception as exc:  # PIL raises many types for bad files
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = re.sub(r"\s*<[^>]* at 0x[0-9a-fA-F]+>", "", msg)  # no memory addresses: manifests must be reproducible
        kind = "truncated" if "truncated" in msg.lower() else "corrupt"
        return Decoded(None, "skipped", f"{kind}: {msg}", len(data))
    if img.mode != "RGB":
        if img.mode == "CMYK":
            reasons.append("CMYK converted to RGB")
        elif img.mode in ("L", "1"):
            pass  # 8-bit / 1-bit gray replicated to 3 channels: lossless, stored as found ("ok")
        elif img.mode in ("LA", "I", "I;16", "F"):
            reasons.append(f"grayscale ({img.mode}) converted to RGB")
        else:
            reasons.append(f"mode {img.mode} converted to RGB")
        if img.mode in ("I", "I;16", "F"):
            arr = np.asarray(img, dtype=np.float32)
            arr = np.clip(arr / max(float(arr.max()), 1.0) * 255.0, 0, 255).astype(np.uint8)
            img = Image.fromarray(arr, "L")
        img = img.convert("RGB")
    image = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        return Decoded(None, "skipped", f"unusable shape {image.shape}", len(data))
    if min(image.shape[:2]) < MIN_SIDE:
        return Decoded(None, "skipped", f"too small: {image.shape[0]}x{image.shape[1]} px "
                                        f"(shorter side under {MIN_SIDE} px)", len(data))
    image = np.ascontiguousarray(fit_max_side(image, max_resolution))
    if min(image.shape[:2]) < MIN_SIDE:
        return Decoded(None, "skipped", f"too small once shrunk to max side {max_resolution}: "
                                        f"{image.shape[0]}x{image.shape[1]} px (shorter side under {MIN_SIDE} px)",
                       len(data))
    return Decoded(image, "converted" if reasons else "ok", "; ".join(reasons), len(data))
