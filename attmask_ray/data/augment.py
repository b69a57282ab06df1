"""Batched SPEC §5 augmentations on device tensors, with per-sample random parameters.

Each view kind draws its own parameters for every sample of the batch
(:func:`sample_params`), then :func:`apply` runs them as a few batched tensor ops, so on
a GPU the augmentation work is done by the GPU. Order (DINO/iBOT): flip (p data.flip_prob, 0.5), colour jitter
(p 0.8; brightness, contrast, saturation, hue in one random order per batch), grayscale
(p 0.2), Gaussian blur (sigma ~ U(data.blur_sigma), default U(0.1, 2.0) pixels, kernel ~10% of the crop side, odd, >= 3),
solarize (threshold 0.5), normalise. All probabilities come from :class:`DataConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attmask_ray.config import DataConfig

_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision's rgb_to_grayscale


@dataclass(frozen=True)
class ViewProbs:
    """Probabilities for one view kind (global 1, global 2 or local)."""

    blur: float
    solarize: float


def view_probs(cfg: DataConfig) -> list[ViewProbs]:
    """[global 1, global 2, local] probabilities from the config (SPEC §5)."""
    g1, g2, loc = cfg.blur_prob
    return [ViewProbs(g1, 0.0), ViewProbs(g2, cfg.solarize_prob), ViewProbs(loc, 0.0)]


@dataclass(frozen=True)
class Params:
    """Per-sample parameters for a batch of B images (all tensors [B] on the device)."""

    flip: torch.Tensor  # bool
    jitter: torch.Tensor  # bool: colour jitter applied
    brightness: torch.Tensor  # factor
    contrast: torch.Tensor  # factor
    saturation: torch.Tensor  # factor
    hue: torch.Tensor  # shift in turns, [-h, h]
    jitter_order: tuple[int, ...]  # permutation of (b, c, s, h) for this batch (host ints: no device sync)
    gray: torch.Tensor  # bool
    blur: torch.Tensor  # bool
    sigma: torch.Tensor  # blur sigma
    solarize: torch.Tensor  # bool


def sample_params(batch: int, cfg: DataConfig, probs: ViewProbs, generator: torch.Generator,
                  device: torch.device | str, order_generator: torch.Generator | None = None) -> Params:
    """Draw per-sample augmentation parameters for ``batch`` images of one view kind.

    ``generator`` lives on ``device``; ``order_generator`` (CPU) draws the per-batch jitter order.
    """
    r = iter(torch.rand(10, batch, generator=generator, device=device))  # one draw (one launch) for all 10 rows

    def u(lo: float, hi: float) -> torch.Tensor:
        return next(r) * (hi - lo) + lo

    def coin(p: float) -> torch.Tensor:
        return next(r) < p

    b, c, s, h = cfg.color_jitter
    return Params(
        flip=coin(cfg.flip_prob), jitter=coin(cfg.color_jitter_prob),
        brightness=u(max(0.0, 1 - b), 1 + b), contrast=u(max(0.0, 1 - c), 1 + c),
        saturation=u(max(0.0, 1 - s), 1 + s), hue=u(-h, h),
        jitter_order=tuple(torch.randperm(4, generator=order_generator).tolist()),
        gray=coin(cfg.grayscale_prob), blur=coin(probs.blur), sigma=u(*cfg.blur_sigma), solarize=coin(probs.solarize))


def _col(mask: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, 1, 1, 1)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] in [0, 1] -> luma [B, 1, H, W]."""
    return x[:, 0:1] * _GRAY[0] + x[:, 1:2] * _GRAY[1] + x[:, 2:3] * _GRAY[2]


def _blend(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f.view(-1, 1, 1, 1) * a + (1 - f.view(-1, 1, 1, 1)) * b).clamp_(0, 1)


def _hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``shift`` turns per sample ([B]); x [B, 3, H, W] in [0, 1].

    torchvision's RGB -> HSV -> RGB round trip, written with few whole-tensor ops (each op is a
    kernel launch on the GPU's critical host thread): hue from the max channel's formula,
    picked by argmax (first max wins: r, then g, then b, as torchvision's masks); grey pixels
    get hue 0; v*s = max - min.
    """
    maxc, arg = x.max(1)  # [B, H, W]; ties resolve to the first channel
    delta = maxc - x.amin(1)
    c = (maxc.unsqueeze(1) - x) / torch.where(delta > 0, delta, 1.0).unsqueeze(1)  # (rc, gc, bc)
    d = c.roll(1, 1) - c.roll(-1, 1)  # (bc - gc, rc - bc, gc - rc): the r, g, b formulas less their offsets
    h = d.gather(1, arg.unsqueeze(1)).squeeze(1) + 2.0 * arg  # offsets 0, 2, 4
    hue6 = ((h / 6.0 + 1.0 + shift.view(-1, 1, 1)) % 1.0) * 6.0
    n = torch.arange(5.0, 0.0, -2.0, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)  # HSV -> RGB: c_n, n = 5, 3, 1
    k = (hue6.unsqueeze(1) + n) % 6.0
    return maxc.unsqueeze(1) - delta.unsqueeze(1) * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def color_jitter(x: torch.Tensor, p: Params) -> torch.Tensor:
    """Brightness, contrast, saturation, hue with per-sample factors, order p.jitter_order."""
    for op in p.jitter_order:
        if op == 0:
            x = (x * p.brightness.view(-1, 1, 1, 1)).clamp_(0, 1)
        elif op == 1:
            mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
            x = _blend(x, mean, p.contrast)
        elif op == 2:
            x = _blend(x, grayscale(x), p.saturation)
        else:
            x = _hue_shift(x, p.hue)
    return x


def blur_kernel_size(side: int) -> int:
    """Odd kernel side ~10% of the crop side (SimCLR/BYOL rule), at least 3: 224->23, 96->9, 28->3."""
    k = max(3, int(0.1 * side))
    return k if k % 2 else k + 1


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma ([B]); x [B, C, H, W], reflect padding."""
    b, c, h, w = x.shape
    k = blur_kernel_size(min(h, w))
    r = k // 2
    t = torch.arange(k, device=x.device, dtype=x.dtype) - r
    ker = torch.exp(-(t[None, :] ** 2) / (2 * sigma.to(x.dtype)[:, None] ** 2))
    ker = ker / ker.sum(1, keepdim=True)  # [B, k]
    ker = ker.repeat_interleave(c, 0)  # [B*C, k]
    y = x.reshape(1, b * c, h, w)
    pad = min(r, h - 1, w - 1)
    if pad < r:  # tiny images: reflect padding cannot exceed the side
        y = F.pad(y, (r, r, r, r), mode="replicate")
    else:
        y = F.pad(y, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, ker.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(y, ker.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, h, w)


def apply(x: torch.Tensor, p: Params, cfg: DataConfig, probs: ViewProbs) -> torch.Tensor:
    """Augment x [B, 3, H, W] float in [0, 1] with per-sample params; returns a new tensor in [0, 1].

    Ops whose configured probability is 0 are skipped outright; no op reads a device value
    back to the host (no sync).
    """
    x = torch.where(_col(p.flip), x.flip(-1), x)
    if cfg.color_jitter_prob > 0:
        x = torch.where(_col(p.jitter), color_jitter(x, p), x)
    if cfg.grayscale_prob > 0:
        x = torch.where(_col(p.gray), grayscale(x).expand_as(x), x)
    if probs.blur > 0:
        x = torch.where(_col(p.blur), gaussian_blur(x, p.sigma), x)
    if probs.solarize > 0:
        x = torch.where(_col(p.solarize) & (x >= 0.5), 1.0 - x, x)
    return x


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std with mean/std [1, 3, 1, 1]."""
    return (x - mean) / std
