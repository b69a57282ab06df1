"""RandomResizedCrop for a whole batch on the device: sample boxes, cut them with roi_align.

The host decodes each image once (:class:`~attmask_ray.data.multicrop.FullImageDecoder`);
here every crop of every sample is a box (torchvision's RandomResizedCrop rule: 10 tries
of area ~ U(scale) x image area and log-uniform aspect ratio in [3/4, 4/3], else a centre
crop) resampled by ``roi_align`` with adaptive sampling, i.e. bilinear with area-averaging
when shrinking, so no aliasing. :func:`random_resized_crop_flip` is torchvision's
RandomResizedCrop + flip on an in-memory batch (the linear probe's views without FFCV).
"""

from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align

RRC_SCALE = (0.08, 1.0)  # RandomResizedCrop area range (torchvision default, DINO eval_linear)
RATIO = (3.0 / 4.0, 4.0 / 3.0)  # RandomResizedCrop aspect-ratio range (torchvision default)

TRIES = 10


def sample_boxes(h: torch.Tensor, w: torch.Tensor, scale: tuple[float, float], generator: torch.Generator,
                 ratio: tuple[float, float] = RATIO) -> torch.Tensor:
    """Random crop boxes for images of sizes h, w ([N] float): [N, 4] (x1, y1, x2, y2) in pixels."""
    n, dev = h.shape[0], h.device
    area = (h * w)[:, None] * (torch.rand(n, TRIES, generator=generator, device=dev) * (scale[1] - scale[0]) + scale[0])
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    ar = torch.exp(torch.rand(n, TRIES, generator=generator, device=dev) * (lr[1] - lr[0]) + lr[0])
    cw = torch.round(torch.sqrt(area * ar))
    ch = torch.round(torch.sqrt(area / ar))
    ok = (cw > 0) & (cw <= w[:, None]) & (ch > 0) & (ch <= h[:, None])
    first = torch.argmax(ok.to(torch.int8), dim=1)  # first valid try (0 if none)
    any_ok = ok.any(dim=1)
    cw = cw.gather(1, first[:, None])[:, 0]
    ch = ch.gather(1, first[:, None])[:, 0]
    # fallback (no valid try): the largest centred crop with a clamped aspect ratio
    in_ratio = w / h
    fw = torch.where(in_ratio < ratio[0], w, torch.where(in_ratio > ratio[1], torch.round(h * ratio[1]), w))
    fh = torch.where(in_ratio < ratio[0], torch.round(w / ratio[0]), h)
    cw, ch = torch.where(any_ok, cw, fw), torch.where(any_ok, ch, fh)
    u = torch.rand(n, 2, generator=generator, device=dev)
    y = torch.where(any_ok, torch.floor(u[:, 0] * (h - ch + 1)), torch.floor((h - ch) / 2))
    x = torch.where(any_ok, torch.floor(u[:, 1] * (w - cw + 1)), torch.floor((w - cw) / 2))
    return torch.stack([x, y, x + cw, y + ch], dim=1)


def crop_resize(images: torch.Tensor, boxes: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """images [B, C, H, W] float, boxes [K*B, 4] (crop k of image b at row k*B + b) -> [K*B, C, size, size]
    (or [K*B, C, h, w] for ``size`` = (h, w))."""
    b = images.shape[0]
    idx = torch.arange(boxes.shape[0], device=images.device).remainder(b).to(boxes.dtype)[:, None]
    return roi_align(images, torch.cat([idx, boxes], 1), output_size=(size, size) if isinstance(size, int) else tuple(size), spatial_scale=1.0,
                     sampling_ratio=-1, aligned=True)


def random_resized_crop_flip(images: torch.Tensor, scale: tuple[float, float] = RRC_SCALE,
                             generator: torch.Generator | None = None) -> torch.Tensor:
    """torchvision's RandomResizedCrop + RandomHorizontalFlip, per image, on a tensor batch.

    images: [B, C, H, W] -> [B, C, H, W]: each image's crop (the training loader's box rule,
    :func:`sample_boxes`) resampled back to H x W with roi_align.
    """
    b, _, h, w = images.shape
    boxes = sample_boxes(images.new_full((b,), float(h)), images.new_full((b,), float(w)), scale, generator)
    out = crop_resize(images, boxes, (h, w))
    flip = torch.rand(b, generator=generator, device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)
