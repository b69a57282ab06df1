"""Where the evaluations get their batches: a ``loader_factory(path, data_cfg, batch_size,
device=..., augment=...)`` yielding ``(images [B, 3, G, G], labels [B], ...)``; by default the
project's FFCV eval loader (:mod:`attmask_ray.eval.in_memory` has the in-memory one)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch

from attmask_ray.data.device_crops import RRC_SCALE

LoaderFactory = Callable[..., Iterable[Sequence[torch.Tensor]]]


def default_loader(path: str, data_cfg: Any, batch_size: int, device: str | torch.device = "cpu",
                   augment: bool = False, crop_scale: tuple[float, float] = RRC_SCALE) -> Iterable:
    """The project's FFCV eval loader (resize + centre crop, normalised); ``augment=True``: the
    re-iterable linear-probe loader (RandomResizedCrop(``crop_scale``) + flip of the full image,
    one pass per epoch)."""
    from attmask_ray.data import LinearProbeLoader, build_eval_loader  # FFCV loads on first use

    if augment:
        return LinearProbeLoader(path, data_cfg, batch_size, device=str(device), scale=crop_scale)
    return build_eval_loader(path, data_cfg, batch_size, device=str(device))
