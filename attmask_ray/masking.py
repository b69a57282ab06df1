"""Token masks for masked image modelling (SPEC §3): block, random and AttMask variants.

All masks are BoolTensor [B, n] over the h x w patch grid (row-major, n = h*w),
True = masked (the student sees the mask token). Everything is drawn from the given
``torch.Generator`` so masks are reproducible; tensors live on ``scores.device``
(or ``device`` when no scores are given). Only ``block`` loops on the CPU.

``STRATEGIES`` is the one registry of masking strategies: name -> :class:`Strategy` (whether it
ranks tokens by the teacher's [CLS] attention, where the reference draws the ratio, and its
mask function). Config validation, the training step, viz, bench and the report read it; a new
strategy is one mask function plus one entry here (and its tests, which run over the registry).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["STRATEGIES", "MaskDraw", "Strategy", "generate_masks", "mask_ratio", "packed_index"]

_BLOCK_ASPECT = (math.log(0.3), math.log(1 / 0.3))  # log-uniform aspect ratio range
_BLOCK_ATTEMPTS = 10


@dataclass(frozen=True)
class MaskDraw:
    """The draws every strategy starts from, made once per batch by :func:`generate_masks`.

    keep: [B] bool, which images are masked at all (probability ``prob``); r: [B] float64,
    each image's masking ratio r ~ U(a, b) (one value expanded, or one per image). Both live
    where the draws are made (``src``: the generator's device); masks live on ``device``.
    """

    scores: torch.Tensor | None  # [B, n] teacher [CLS] attention, or None
    grid: tuple[int, int]  # (h, w)
    keep: torch.Tensor  # [B] bool
    r: torch.Tensor  # [B] float64
    ratio: tuple[float, float]  # (a, b)
    show_max: float
    per_image_ratio: bool
    generator: torch.Generator | None
    device: torch.device  # where the masks live
    src: torch.device  # where the draws are made

    @property
    def n(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def batch_size(self) -> int:
        return int(self.keep.shape[0])

    def tokens(self) -> torch.Tensor:
        """[B] int64 tokens to mask per image, floor(r * n) (float64: floor as in python)."""
        return torch.floor(self.r * self.n).long()

    def finish(self, masks: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unkept images unmasked: (masks [B, n] & keep, masked-token count (scalar, where the draws are))
        from the per-image ``counts`` [B]."""
        return masks & _to(self.keep, self.device)[:, None], torch.where(self.keep, counts, 0).sum()


MaskFn = Callable[[MaskDraw], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Strategy:
    """One entry of :data:`STRATEGIES`."""

    name: str
    needs_attention: bool  # ranks tokens by the teacher's [CLS] attention (generate_masks needs scores)
    ratio_per_image: bool  # the reference's default: r drawn per image and crop (True) or once per batch
    masks: MaskFn  # MaskDraw -> (masks [B, n] bool on draw.device, masked-token count [] where the draws are)


def generate_masks(scores: torch.Tensor | None, grid: tuple[int, int], strategy: str,
                   ratio: tuple[float, float] = (0.1, 0.5), prob: float = 0.5,
                   show_max: float = 0.1, per_image_ratio: bool | None = None,
                   generator: torch.Generator | None = None,
                   batch_size: int | None = None,
                   device: torch.device | str | None = None,
                   return_count: bool = False) -> torch.Tensor | tuple[torch.Tensor, int | None]:
    """Masks for one batch of views -> BoolTensor [B, h*w], True = masked.

    scores: [B, n] teacher [CLS] attention over the n = h*w patches (required for the
        strategies that need attention; optional for block/random, where batch_size/device give B).
    strategy: a name of :data:`STRATEGIES`.
    ratio: (a, b); the ratio r ~ U(a, b) is drawn once per batch, or per image (per row,
        i.e. per image and global crop) when per_image_ratio. Exactly floor(r*n) tokens are
        masked (block: at most that many).
    per_image_ratio: None follows the reference code per strategy (``Strategy.ratio_per_image``):
        per image for block/random (drawn in its data loader), once per batch for the
        attmask_* strategies (drawn in its training loop); True/False force either.
    prob: each image is masked with probability prob, otherwise its row is all False.
    show_max: attmask_hint reveals floor(s*n) of the floor(show_max*n) most attended
        tokens, s ~ U(show_max*a, show_max*b) (drawn like r, independently of it).
    generator: source of all randomness (a CPU generator also works for CUDA scores).
    device: only used when scores is None; otherwise masks live on scores.device.
    return_count: also return the number of masked tokens, ``masks.sum()``, as a Python int
        worked out on the host from the draws (no device read), or None when the draws are
        made on a GPU generator; the student uses it to pack the masked tokens without a sync.
    No host synchronisation: the draws are made where ``generator`` lives and copied to the
    device without waiting (block draws its rectangles on the CPU, then copies the masks).
    """
    h, w = _check_args(grid, strategy, ratio, prob, show_max)
    entry = STRATEGIES[strategy]
    n = h * w
    if scores is not None:
        if scores.dim() != 2 or scores.shape[1] != n:
            raise ValueError(f"scores must have shape [B, h*w] = [B, {n}] for grid={(h, w)}, "
                             f"got {tuple(scores.shape)}")
        if batch_size is not None and batch_size != scores.shape[0]:
            raise ValueError(f"batch_size={batch_size} does not match scores.shape[0]={scores.shape[0]}")
        bsz, dev = scores.shape[0], scores.device
    elif entry.needs_attention:
        raise ValueError(f"strategy={strategy!r} needs attention scores, got scores=None")
    elif not _is_int(batch_size) or batch_size < 0:
        raise ValueError(f"batch_size must be a non-negative int when scores is None, got {batch_size!r}")
    else:
        bsz, dev = batch_size, torch.device(device if device is not None else "cpu")

    if per_image_ratio is None:
        per_image_ratio = entry.ratio_per_image
    a, b = float(ratio[0]), float(ratio[1])
    src = generator.device if generator is not None else dev  # where the draws are made
    keep = torch.rand((bsz,), generator=generator, device=src) < prob  # [B] which images get masked
    u = torch.rand((bsz if per_image_ratio else 1,), generator=generator, device=src, dtype=torch.float64)
    r = (a + (b - a) * u).expand(bsz)  # [B] masking ratios (float64: floor(r*n) as in python)
    draw = MaskDraw(scores, (h, w), keep, r, (a, b), float(show_max), bool(per_image_ratio), generator, dev, src)
    masks, count = entry.masks(draw)
    if not return_count:
        return masks
    return masks, (int(count) if src.type == "cpu" else None)  # host draws: read without waiting for the device


def _block(d: MaskDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """BEiT/iBOT blocks drawn on the CPU (budget 0 for images that stay unmasked), then copied."""
    budgets = [ri * d.n if kept else 0.0 for ri, kept in zip(d.r.tolist(), d.keep.tolist())]
    host_masks = _block_masks(d.grid[0], d.grid[1], budgets, d.generator)
    return _to(host_masks, d.device), host_masks.sum()


def _first_tokens(d: MaskDraw, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask the first floor(r*n) tokens of ``order`` [B, n]: (masks [B, n], counts [B])."""
    k = d.tokens()
    return _first_k(order, _to(k, d.device)), k


def _attention_order(d: MaskDraw, most_attended_first: bool) -> torch.Tensor:
    """[B, n] token indices ranked by the teacher's [CLS] attention (stable on ties)."""
    return d.scores.argsort(dim=1, descending=most_attended_first, stable=True)


def _random(d: MaskDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """floor(r*n) tokens chosen uniformly at random."""
    return d.finish(*_first_tokens(d, _rand((d.batch_size, d.n), d.generator, d.device).argsort(dim=1)))


def _attmask_high(d: MaskDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """The floor(r*n) most attended tokens (the paper's AttMask)."""
    return d.finish(*_first_tokens(d, _attention_order(d, True)))


def _attmask_low(d: MaskDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """The floor(r*n) least attended tokens."""
    return d.finish(*_first_tokens(d, _attention_order(d, False)))


def _attmask_hint(d: MaskDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """attmask_high, then reveal floor(s*n) random tokens among the c = floor(show_max*n) most
    attended, s ~ U(show_max*a, show_max*b) (drawn like r)."""
    order = _attention_order(d, True)
    masks, k = _first_tokens(d, order)
    (a, b), n, bsz, src = d.ratio, d.n, d.batch_size, d.src
    c = int(d.show_max * n)  # reveal candidates: the c most attended tokens
    us = torch.rand((bsz if d.per_image_ratio else 1,), generator=d.generator, device=src, dtype=torch.float64)
    m = torch.floor(d.show_max * (a + (b - a) * us) * n).long().clamp(max=c).expand(bsz)
    if c > 0:
        # random order of the candidates; pick[i, j] is a rank in ``order``, so a revealed
        # token was masked iff pick[i, j] < k[i] (j < m[i])
        pick = torch.rand((bsz, c), generator=d.generator, device=src).argsort(dim=1)
        masks &= ~_first_k(order[:, :c].gather(1, _to(pick, d.device)), _to(m, d.device), n)
        revealed = ((pick < k[:, None]) & (torch.arange(c, device=src)[None, :] < m[:, None])).sum(1)
        k = k - revealed
    return d.finish(masks, k)


# The registry. ratio_per_image: the reference draws r per image and crop for block/random (its
# data loader) and once per batch for attmask_* (its training loop, "the same masking ratio").
# Order: the paper's code (the report sorts strategies this way).
STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("block", needs_attention=False, ratio_per_image=True, masks=_block),
    Strategy("random", needs_attention=False, ratio_per_image=True, masks=_random),
    Strategy("attmask_high", needs_attention=True, ratio_per_image=False, masks=_attmask_high),
    Strategy("attmask_low", needs_attention=True, ratio_per_image=False, masks=_attmask_low),
    Strategy("attmask_hint", needs_attention=True, ratio_per_image=False, masks=_attmask_hint),
)}


def packed_index(masks: torch.Tensor, n_masked: int) -> torch.Tensor:
    """Flat indices ``[n_masked]`` of the True entries of ``masks`` (any shape) in
    ``masks.nonzero()`` order, without a host sync (``n_masked`` = ``masks.sum()`` known on the
    host): a stable sort puts the True entries first in their original order."""
    return torch.sort((~masks.reshape(-1).bool()).to(torch.uint8), stable=True).indices[:n_masked]


def mask_ratio(masks: torch.Tensor) -> torch.Tensor:
    """Mean masked fraction of a BoolTensor [B, n] of masks -> scalar float tensor."""
    return masks.float().mean()


def _check_args(grid, strategy, ratio, prob, show_max) -> tuple[int, int]:
    """Validate the scalar arguments (one clear ValueError per bad argument); returns (h, w)."""
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        close = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}{hint}")
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(_is_int(g) and g > 0 for g in grid)):
        raise ValueError(f"grid must be two positive ints (h, w), got {grid!r}")
    if (not isinstance(ratio, (tuple, list)) or len(ratio) != 2
            or not all(isinstance(x, (int, float)) for x in ratio)
            or not 0.0 <= ratio[0] <= ratio[1] <= 1.0):
        raise ValueError(f"ratio must be a pair (a, b) with 0 <= a <= b <= 1, got {ratio!r}")
    if not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    if not isinstance(show_max, (int, float)) or not 0.0 < show_max <= 1.0:
        raise ValueError(f"show_max must be in (0, 1], got {show_max!r}")
    return int(grid[0]), int(grid[1])


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device``; host -> device without waiting for the device (a blocking copy would
    make the host wait for all queued work, the teacher forward, before it may queue the
    student). Device -> host stays blocking: the host reads the result at once."""
    return x if x.device == device else x.to(device, non_blocking=x.device.type == "cpu")


def _rand(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """U[0, 1) on `device`, drawn from `generator` (on its own device if that differs)."""
    if generator is None or generator.device == device:
        return torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return _to(torch.rand(shape, generator=generator, device=generator.device, dtype=dtype), device)


def _first_k(order: torch.Tensor, k: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """order: [B, c] token indices; k: [B] -> BoolTensor [B, n], True at order[i, :k[i]]."""
    bsz, c = order.shape
    rank_ok = torch.arange(c, device=order.device)[None, :] < k[:, None]
    out = torch.zeros(bsz, n if n is not None else c, dtype=torch.bool, device=order.device)
    return out.scatter_(1, order, rank_ok)


def block_min_area(h: int, w: int) -> int:
    """Smallest block area of block masking on an h x w grid, as the reference code:
    ``(min(h, w) // 3) ** 2`` (16 on 14x14, 25 on 15x15, 81 on 28x28)."""
    return (min(h, w) // 3) ** 2


def _block_masks(h: int, w: int, budgets: list[float],
                 generator: torch.Generator | None) -> torch.Tensor:
    """BEiT/iBOT block masking on the CPU; budgets: per-image target r*n -> BoolTensor [B, h*w].

    Rows are python-int bitmasks; random numbers come from `generator` in chunks.
    A block's new tokens never exceed the remaining budget, so count <= floor(budget).
    """
    min_area = block_min_area(h, w)
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    pool: list[float] = []

    def uniform() -> float:
        if not pool:
            pool.extend(torch.rand(4096, generator=generator, device=gen_dev, dtype=torch.float64)
                        .tolist()[::-1])
        return pool.pop()

    images = []
    for budget in budgets:
        rows, count = [0] * h, 0
        while count < budget:
            left_budget, delta = budget - count, 0
            for _ in range(_BLOCK_ATTEMPTS):
                area = min_area + (left_budget - min_area) * uniform()
                aspect = math.exp(_BLOCK_ASPECT[0] + (_BLOCK_ASPECT[1] - _BLOCK_ASPECT[0]) * uniform())
                bh, bw = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
                top, left = int(uniform() * (h - bh + 1)), int(uniform() * (w - bw + 1))
                if bw < w and bh < h:
                    cols = ((1 << bw) - 1) << left
                    new = bh * bw - sum((rows[i] & cols).bit_count() for i in range(top, top + bh))
                    if 0 < new <= left_budget:
                        for i in range(top, top + bh):
                            rows[i] |= cols
                        delta = new
                        break
            if delta == 0:
                break
            count += delta
        images.append([(row >> j) & 1 for row in rows for j in range(w)])
    return torch.tensor(images, dtype=torch.bool).reshape(len(budgets), h * w)
