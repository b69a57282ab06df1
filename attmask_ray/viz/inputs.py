"""Images for the pictures: plain photo files (PIL) or the evaluation loader's shards.

Both return normalised tensors [B, 3, G, G] (G = data.global_crop_size, normalised with
data.mean/std) plus a short label per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from attmask_ray.config import DataConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class VizError(ValueError):
    """Bad input for a picture (no images, unreadable file, ...); one-line message."""


def normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or float [B, H, W, 3] -> normalised float tensor [B, 3, H, W]."""
    arr = np.asarray(images)
    x = torch.from_numpy(arr.astype(np.float32)) / (255.0 if arr.dtype == np.uint8 else 1.0)
    x = x.permute(0, 3, 1, 2)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] (or [H, W]) -> uint8 [size, size, 3]: shorter side to size, centre crop."""
    from PIL import Image

    pil = Image.fromarray(image).convert("RGB")
    w, h = pil.size
    s = size / min(w, h)
    pil = pil.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)
    w, h = pil.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(pil.crop((left, top, left + size, top + size)))


def image_files(paths: Sequence[str | Path], limit: int | None = None) -> list[Path]:
    """Expand folders into their image files (sorted); keep files as given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise VizError(f"no image file or folder at {p}")
    if not files:
        raise VizError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}")
    return files[:limit] if limit else files


def load_photos(paths: Sequence[str | Path], cfg: DataConfig,
                limit: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """Photo files/folders -> (images [B, 3, G, G] normalised, file names)."""
    from PIL import Image, UnidentifiedImageError

    files = image_files(paths, limit)
    crops = []
    for f in files:
        try:
            crops.append(square_crop(np.asarray(Image.open(f).convert("RGB")), cfg.global_crop_size))
        except (OSError, UnidentifiedImageError) as exc:
            raise VizError(f"cannot read image {f}: {exc}") from exc
    return normalise(np.stack(crops), cfg.mean, cfg.std), [f.name for f in files]


def spread_over_classes(labels: np.ndarray, limit: int) -> np.ndarray:
    """Sorted indices of up to ``limit`` samples that take the classes in turn: the first sample of
    each class, then the second of each, ... (a split sorted by class would otherwise show one class)."""
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked: list[int] = []
    for rank in range(max((len(b) for b in by_class), default=0)):
        picked += [int(b[rank]) for b in by_class if rank < len(b)]
        if len(picked) >= limit:
            break
    return np.sort(np.asarray(picked[:limit], dtype=np.int64))


def load_from_shards(path: str | Path, cfg: DataConfig, limit: int) -> tuple[torch.Tensor, list[str]]:
    """``limit`` images of an evaluation split (FFCV shards), spread over its classes -> (images, labels)."""
    from attmask_ray.data import build_eval_loader, check_dataset  # heavy (FFCV); only when shards are used

    info = check_dataset(str(path))
    indices = spread_over_classes(info.labels, limit) if info.labels is not None else None
    images, labels = [], []
    got = 0
    for batch_images, batch_labels, batch_indices in build_eval_loader(str(path), cfg, batch_size=limit,
                                                                       indices=indices):
        images.append(batch_images.float().cpu())
        labels += [f"#{int(i)} (class {int(c)})" for i, c in zip(batch_indices, batch_labels)]
        got += len(batch_images)
        if got >= limit:
            break
    if not images:
        raise VizError(f"the evaluation loader yielded no images from {path}")
    return torch.cat(images)[:limit], labels[:limit]
