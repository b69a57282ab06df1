"""SPEC §5 augmentations on the host CPU: one compiled pass per crop, threads over samples.

On a CPU-only worker the batched tensor ops of :mod:`attmask_ray.data.augment` are
memory-bound sweeps over float32 batches (the HSV hue rotation alone is ~40 of them), and
they cost ~15x the JPEG decode. This module applies the SAME operations with the SAME
per-sample parameters (drawn by :func:`augment.sample_params` from the loader's seeded
generators) in a numba kernel that reads one uint8 HWC crop, as the multi-crop decoder
wrote it, keeps the pixel in registers through flip, colour jitter, grayscale, blur and
solarize, and writes the normalised float32 CHW view. The kernel releases the GIL, so a
small thread pool runs chunks of the batch in parallel next to FFCV's decode threads.

One deliberate difference from the tensor path: the colour-jitter order is drawn per
sample (as torchvision's ``ColorJitter`` does for each image), not once per batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit

from attmask_ray.config import DataConfig
from attmask_ray.data import augment

# columns of the packed per-sample parameter array [B, NUM_PARAMS] (float32; booleans as 0/1)
FLIP, JITTER, BRIGHTNESS, CONTRAST, SATURATION, HUE, GRAY, BLUR, SIGMA, SOLARIZE = range(10)
NUM_PARAMS = 10

_F = np.float32
_R, _G, _B = (_F(v) for v in augment._GRAY)  # noqa: SLF001 (same luma weights as the tensor path)


def pack_params(p: augment.Params) -> np.ndarray:
    """augment.Params of B samples -> float32 [B, NUM_PARAMS] (column order: the constants above)."""
    cols = (p.flip, p.jitter, p.brightness, p.contrast, p.saturation, p.hue, p.gray, p.blur, p.sigma, p.solarize)
    return torch.stack([c.float().cpu() for c in cols], 1).numpy()


@njit(nogil=True, cache=True)
def _blend_clamp(a: float, b: float, f: float) -> float:
    v = f * a + (_F(1.0) - f) * b
    return min(max(v, _F(0.0)), _F(1.0))


@njit(nogil=True, cache=True)
def _mod(a: float, b: float) -> float:
    """Floored float remainder (torch.remainder / Python %), without the libm fmod call."""
    return a - b * np.floor(a / b)


@njit(nogil=True, cache=True)
def _hsv_ramp(hue6: float, n: float) -> float:
    """HSV -> RGB without branches: channel n of hue*6 is v - v*s*clamp(min(k, 4 - k), 0, 1), k = (hue6 + n) % 6."""
    k = _mod(hue6 + n, _F(6.0))
    return min(max(min(k, _F(4.0) - k), _F(0.0)), _F(1.0))


@njit(nogil=True, cache=True)
def _hue(work: np.ndarray, shift: float) -> None:
    """Rotate hue by ``shift`` turns in place, work [H, W, 3] in [0, 1] (augment._hue_shift, per pixel)."""
    h, w = work.shape[0], work.shape[1]
    one, six = _F(1.0), _F(6.0)
    for y in range(h):
        for x in range(w):
            r, g, b = work[y, x, 0], work[y, x, 1], work[y, x, 2]
            maxc = max(r, g, b)
            delta = maxc - min(r, g, b)
            s = delta / maxc if maxc > 0 else _F(0.0)
            hue = _F(0.0)
            if delta > 0:
                rc, gc, bc = (maxc - r) / delta, (maxc - g) / delta, (maxc - b) / delta
                if maxc == r:
                    hh = bc - gc
                elif maxc == g:
                    hh = _F(2.0) + rc - bc
                else:
                    hh = _F(4.0) + gc - rc
                hue = _mod(hh / six + one, one)
            hue6 = _mod(hue + shift, one) * six
            vs = maxc * s
            work[y, x, 0] = maxc - vs * _hsv_ramp(hue6, _F(5.0))
            work[y, x, 1] = maxc - vs * _hsv_ramp(hue6, _F(3.0))
            work[y, x, 2] = maxc - vs * _hsv_ramp(hue6, _F(1.0))


@njit(nogil=True, cache=True)
def _colour_jitter(work: np.ndarray, prm: np.ndarray, order: np.ndarray) -> None:
    """Brightness (0), contrast (1), saturation (2), hue (3) in ``order``, in place on work [H, W, 3]."""
    h, w = work.shape[0], work.shape[1]
    zero, one = _F(0.0), _F(1.0)
    for op in order:
        if op == 0:
            f = prm[BRIGHTNESS]
            for y in range(h):
                for x in range(w):
                    for c in range(3):
                        work[y, x, c] = min(max(work[y, x, c] * f, zero), one)
        elif op == 1:
            total = 0.0
            for y in range(h):
                for x in range(w):
                    total += work[y, x, 0] * _R + work[y, x, 1] * _G + work[y, x, 2] * _B
            mean, f = _F(total / (h * w)), prm[CONTRAST]
            for y in range(h):
                for x in range(w):
                    for c in range(3):
                        work[y, x, c] = _blend_clamp(work[y, x, c], mean, f)
        elif op == 2:
            f = prm[SATURATION]
            for y in range(h):
                for x in range(w):
                    gray = work[y, x, 0] * _R + work[y, x, 1] * _G + work[y, x, 2] * _B
                    for c in range(3):
                        work[y, x, c] = _blend_clamp(work[y, x, c], gray, f)
        else:
            _hue(work, prm[HUE])


@njit(nogil=True, cache=True)
def _source_index(i: int, n: int, reflect: bool) -> int:
    """Index into a side of length n for position i outside it: reflect (no edge repeat) or replicate."""
    if reflect:
        if i < 0:
            return -i
        return 2 * n - 2 - i if i >= n else i
    return min(max(i, 0), n - 1)


@njit(nogil=True, cache=True)
def _blur(work: np.ndarray, tmp: np.ndarray, line: np.ndarray, sigma: float, ksize: int) -> None:
    """Separable Gaussian blur in place (augment.gaussian_blur: width pass, then height pass).

    work/tmp [H, W, 3] C-contiguous; line [>= (W + ksize) * 3] scratch for one padded row.
    Both passes are written as contiguous multiply-adds over a whole row so they vectorise.
    """
    h, w = work.shape[0], work.shape[1]
    r = ksize // 2
    reflect = min(r, h - 1, w - 1) == r  # reflect padding unless the crop is smaller than the kernel
    ker = np.empty(ksize, dtype=np.float32)
    two_s2 = _F(2.0) * _F(sigma) * _F(sigma)
    total = _F(0.0)
    for j in range(ksize):
        t = _F(j - r)
        ker[j] = np.exp(-(t * t) / two_s2)
        total += ker[j]
    for j in range(ksize):
        ker[j] /= total
    wk, tp = work.reshape(h, w * 3), tmp.reshape(h, w * 3)
    n = w * 3
    for y in range(h):
        for x in range(-r, w + r):
            xs = _source_index(x, w, reflect)
            for c in range(3):
                line[(x + r) * 3 + c] = wk[y, xs * 3 + c]
        row = tp[y]
        row[:] = 0
        for j in range(ksize):
            kj, base = ker[j], j * 3
            for i in range(n):
                row[i] += kj * line[base + i]
    for y in range(h):
        row = wk[y]
        row[:] = 0
        for j in range(ksize):
            kj, src = ker[j], tp[_source_index(y + j - r, h, reflect)]
            for i in range(n):
                row[i] += kj * src[i]


@njit(nogil=True, cache=True)
def augment_range(src: np.ndarray, prm: np.ndarray, order: np.ndarray, ksize: int, start: int, stop: int,
                  mean: np.ndarray, std: np.ndarray, wk: np.ndarray, tp: np.ndarray, line: np.ndarray,
                  out: np.ndarray) -> None:
    """Augment samples [start, stop) of one crop kind.

    src [B, H, W, 3] uint8 (HWC, any strides); prm [B, NUM_PARAMS] float32; order [B, 4]
    int64 jitter order; mean/std [3] float32; wk/tp [H, W, 3] float32 C-contiguous and line
    [(W + ksize) * 3] float32 scratch (one set per thread); out [B, 3, H, W] float32 normalised.
    """
    h, w = src.shape[1], src.shape[2]
    scale = _F(255.0)
    for b in range(start, stop):
        p = prm[b]
        flip = p[FLIP] > 0.5
        for y in range(h):
            for x in range(w):
                xs = w - 1 - x if flip else x
                for c in range(3):
                    wk[y, x, c] = _F(src[b, y, xs, c]) / scale
        if p[JITTER] > 0.5:
            _colour_jitter(wk, p, order[b])
        if p[GRAY] > 0.5:
            for y in range(h):
                for x in range(w):
                    gray = wk[y, x, 0] * _R + wk[y, x, 1] * _G + wk[y, x, 2] * _B
                    wk[y, x, 0] = gray
                    wk[y, x, 1] = gray
                    wk[y, x, 2] = gray
        if p[BLUR] > 0.5:
            _blur(wk, tp, line, p[SIGMA], ksize)
        solarize = p[SOLARIZE] > 0.5
        half, one = _F(0.5), _F(1.0)
        for c in range(3):
            m, s = mean[c], std[c]
            for y in range(h):
                for x in range(w):
                    v = wk[y, x, c]
                    if solarize and v >= half:
                        v = one - v
                    out[b, c, y, x] = (v - m) / s


class HostAugmenter:
    """Augment a batch of uint8 HWC crops on the host with ``threads`` threads.

    ``augmenter(crops, gen, order_gen)``: crops = 2 global + m local uint8 tensors
    [B, S, S, 3] (any strides, CPU) -> list of float32 [B, 3, S, S] normalised views. The
    parameters come from ``augment.sample_params`` with the CPU generator ``gen`` (so the
    same seed gives the same views), the per-sample jitter order from ``order_gen``.
    """

    def __init__(self, cfg: DataConfig, threads: int = 1):
        self.cfg, self.probs = cfg, augment.view_probs(cfg)
        self.mean, self.std = np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)
        self.threads = max(1, int(threads))
        self._scratch: list[dict[tuple[int, int], tuple[np.ndarray, ...]]] = [{} for _ in range(self.threads)]
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="host-augment") if self.threads > 1 else None

    def draw(self, kind: int, batch: int, gen: torch.Generator,
             order_gen: torch.Generator) -> tuple[augment.Params, np.ndarray]:
        """Parameters for crop ``kind`` (0, 1 global; >= 2 local) of ``batch`` samples + jitter orders [B, 4]."""
        p = augment.sample_params(batch, self.cfg, self.probs[min(kind, 2)], gen, "cpu", order_gen)
        return p, torch.rand(batch, 4, generator=order_gen).argsort(1).numpy()

    def __call__(self, crops: list[torch.Tensor], gen: torch.Generator, order_gen: torch.Generator,
                 pin_memory: bool = False) -> list[torch.Tensor]:
        b = crops[0].shape[0]
        jobs = []
        for k, x in enumerate(crops):
            p, order = self.draw(k, b, gen, order_gen)
            h, w = x.shape[1], x.shape[2]
            out = torch.empty(b, 3, h, w, pin_memory=pin_memory)
            jobs.append((x.numpy(), pack_params(p), order, augment.blur_kernel_size(min(h, w)), out))
        self.run(jobs)
        return [j[-1] for j in jobs]

    def run(self, jobs: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, torch.Tensor]]) -> None:
        """Run (src, params, order, ksize, out) jobs, each split into one chunk of samples per thread."""
        b = jobs[0][0].shape[0]
        bounds = np.linspace(0, b, self.threads + 1).astype(int)

        def chunk(t: int) -> None:
            for src, prm, order, ksize, out in jobs:
                h, w = src.shape[1:3]
                scratch = self._scratch[t].get((h, w))
                if scratch is None:
                    scratch = self._scratch[t][(h, w)] = (np.empty((h, w, 3), np.float32), np.empty((h, w, 3), np.float32),
                                                          np.empty((w + ksize) * 3, np.float32))
                augment_range(src, prm, order, ksize, bounds[t], bounds[t + 1], self.mean, self.std, *scratch, out.numpy())

        if self._pool is None:
            chunk(0)
        else:
            list(self._pool.map(chunk, range(self.threads)))
