"""In-memory splits in place of the FFCV eval loader (tests, notebooks): a ``loader_factory``
over ``{path: (images [N, 3, H, W], labels [N])}``."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import torch

from attmask_ray.data.device_crops import RRC_SCALE, random_resized_crop_flip
from attmask_ray.eval.errors import EvalError


def tensor_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """In-memory stand-in for the eval loader: [(images [b,3,H,W], labels [b], indices [b]), ...]."""
    idx = torch.arange(len(labels))
    return [(images[i:i + batch_size], labels[i:i + batch_size], idx[i:i + batch_size])
            for i in range(0, len(labels), batch_size)]


class AugmentedTensorBatches:
    """Re-iterable in-memory linear-probe views: each pass is an epoch of
    :func:`~attmask_ray.data.device_crops.random_resized_crop_flip` views of ``images``
    [N, 3, H, W] (reshuffled, seeded), yielded as (views [b, 3, H, W], labels [b])."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int = 0,
                 scale: tuple[float, float] = RRC_SCALE):
        self.images, self.labels, self.batch_size, self.scale = images, labels, batch_size, tuple(scale)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(self.labels), generator=self.generator)
        for i in range(0, len(perm), self.batch_size):
            j = perm[i:i + self.batch_size]
            yield random_resized_crop_flip(self.images[j].float(), scale=self.scale, generator=self.generator), self.labels[j]


def tensor_loader(path: str, data_cfg: Any, batch_size: int, *, datasets: dict[str, tuple[torch.Tensor, torch.Tensor]],
                  augment: bool = False, crop_scale: tuple[float, float] = RRC_SCALE,
                  **_: Any) -> Iterable[Sequence[torch.Tensor]]:
    """A ``loader_factory`` over in-memory splits keyed by path (tests, notebooks).

    Use as ``functools.partial(tensor_loader, datasets={"train": (x, y), "val": (x, y)})``;
    it pickles by value, so Ray tasks on any worker can call it. ``augment=True``: the
    linear probe's re-iterable RandomResizedCrop + flip views.
    """
    if path not in datasets:
        raise EvalError(f"no in-memory split named {path!r} (have: {', '.join(datasets)})")
    images, labels = datasets[path]
    if augment:
        return AugmentedTensorBatches(images, labels, batch_size, scale=crop_scale)
    return tensor_batches(images, labels, batch_size)
