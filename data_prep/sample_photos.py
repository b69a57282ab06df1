"""A small ImageFolder of REAL photos made from package-shipped images (tests, benchmarks).

Sources: scikit-image's sample photos (astronaut, chelsea, coffee, rocket, hubble, retina,
immunohistochemistry) and scikit-learn's (china, flower). One class per source photo;
each image is a seeded random crop of it, resized to an ImageNet-like size and re-encoded
as JPEG, so the files are real photographic content, not noise.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def source_photos() -> dict[str, np.ndarray]:
    """name -> RGB uint8 [H, W, 3] photo shipped inside installed packages (no download)."""
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    photos = {n: getattr(skd, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                                            "retina", "immunohistochemistry")}
    for name, img in zip(("china", "flower"), load_sample_images().images):
        photos[name] = img
    return {k: np.ascontiguousarray(v[..., :3]).astype(np.uint8) for k, v in photos.items()}


def photo_crop(photo: np.ndarray, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop (30-100% of the side) of ``photo`` resized to ``size`` = (H, W)."""
    h, w = photo.shape[:2]
    s = rng.uniform(0.3, 1.0)
    ch, cw = max(8, int(h * s)), max(8, int(w * s))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = photo[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), (size[1], size[0]), interpolation=cv2.INTER_AREA)


def jpeg_bytes(image: np.ndarray, quality: int = 90, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(image)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def make_photo_folder(root: str | Path, per_class: int = 8, classes: int = 3, size: tuple[int, int] = (375, 500),
                      seed: int = 0, bad_files: bool = False) -> Path:
    """Write ``root/<class>/<class>_NNNN.JPEG`` crops; returns root.

    ``bad_files=True`` adds, in the first class: a corrupt file (JPEG header then garbage),
    a truncated JPEG, a CMYK JPEG, a grayscale JPEG and a PNG disguised as ``.JPEG``.
    Sizes alternate between landscape ``size`` and portrait ``size[::-1]``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    photos = source_photos()
    names = list(photos)[:classes]
    if len(names) < classes:
        raise ValueError(f"only {len(photos)} source photos are available, asked for {classes} classes")
    for name in names:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = size if i % 2 == 0 else size[::-1]
            (folder / f"{name}_{i:04d}.JPEG").write_bytes(jpeg_bytes(photo_crop(photos[name], rng, shape)))
    if bad_files:
        folder, photo = root / names[0], photos[names[0]]
        good = jpeg_bytes(photo_crop(photo, rng, size))
        (folder / "zz_corrupt.JPEG").write_bytes(good[:20] + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)))
        (folder / "zz_truncated.JPEG").write_bytes(good[: len(good) // 3])
        (folder / "zz_cmyk.JPEG").write_bytes(jpeg_bytes(photo_crop(photo, rng, size), mode="CMYK"))
        (folder / "zz_gray.JPEG").write_bytes(jpeg_bytes(photo_crop(photo, rng, size), mode="L"))
        buf = io.BytesIO()
        Image.fromarray(photo_crop(photo, rng, size)).save(buf, format="PNG")
        (folder / "zz_png.JPEG").write_bytes(buf.getvalue())
    return root
