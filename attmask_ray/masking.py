"""Token masks for masked image modelling (SPEC §3): block, random and AttMask variants.

All masks are BoolTensor [B, n] over the h x w patch grid (row-major, n = h*w),
True = masked (the student sees the mask token). Everything is drawn from the given
``torch.Generator`` so masks are reproducible; tensors live on ``scores.device``
(or ``device`` when no scores are given). Only ``block`` loops on the CPU.
"""
from __future__ import annotations

import difflib
import math

import torch

__all__ = ["RATIO_PER_IMAGE", "STRATEGIES", "generate_masks", "mask_ratio", "packed_index"]

STRATEGIES = ("block", "random", "attmask_high", "attmask_low", "attmask_hint")
_NEEDS_SCORES = ("attmask_high", "attmask_low", "attmask_hint")
# Reference default of where r is drawn: block/random per image and crop (its data loader),
# attmask_* once per batch (its training loop, "the same masking ratio" for the batch).
RATIO_PER_IMAGE = {"block": True, "random": True, "attmask_high": False, "attmask_low": False,
                   "attmask_hint": False}
_BLOCK_ASPECT = (math.log(0.3), math.log(1 / 0.3))  # log-uniform aspect ratio range
_BLOCK_ATTEMPTS = 10


def generate_masks(scores: torch.Tensor | None, grid: tuple[int, int], strategy: str,
                   ratio: tuple[float, float] = (0.1, 0.5), prob: float = 0.5,
                   show_max: float = 0.1, per_image_ratio: bool | None = None,
                   generator: torch.Generator | None = None,
                   batch_size: int | None = None,
                   device: torch.device | str | None = None,
                   return_count: bool = False) -> torch.Tensor | tuple[torch.Tensor, int | None]:
    """Masks for one batch of views -> BoolTensor [B, h*w], True = masked.

    scores: [B, n] teacher [CLS] attention over the n = h*w patches (required for the
        attmask_* strategies; optional for block/random, where batch_size/device give B).
    ratio: (a, b); the ratio r ~ U(a, b) is drawn once per batch, or per image (per row,
        i.e. per image and global crop) when per_image_ratio. Exactly floor(r*n) tokens are
        masked (block: at most that many).
    per_image_ratio: None follows the reference code per strategy (``RATIO_PER_IMAGE``):
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
    n = h * w
    if scores is not None:
        if scores.dim() != 2 or scores.shape[1] != n:
            raise ValueError(f"scores must have shape [B, h*w] = [B, {n}] for grid={(h, w)}, "
                             f"got {tuple(scores.shape)}")
        if batch_size is not None and batch_size != scores.shape[0]:
            raise ValueError(f"batch_size={batch_size} does not match scores.shape[0]={scores.shape[0]}")
        bsz, dev = scores.shape[0], scores.device
    elif strategy in _NEEDS_SCORES:
        raise ValueError(f"strategy={strategy!r} needs attention scores, got scores=None")
    elif not _is_int(batch_size) or batch_size < 0:
        raise ValueError(f"batch_size must be a non-negative int when scores is None, got {batch_size!r}")
    else:
        bsz, dev = batch_size, torch.device(device if device is not None else "cpu")

    if per_image_ratio is None:
        per_image_ratio = RATIO_PER_IMAGE[strategy]
    a, b = float(ratio[0]), float(ratio[1])
    src = generator.device if generator is not None else dev  # where the draws are made
    keep = torch.rand((bsz,), generator=generator, device=src) < prob  # [B] which images get masked
    u = torch.rand((bsz if per_image_ratio else 1,), generator=generator, device=src, dtype=torch.float64)
    r = (a + (b - a) * u).expand(bsz)  # [B] masking ratios (float64: floor(r*n) as in python)

    on_host = src.type == "cpu"  # the draws can be read without waiting for the device

    def done(masks: torch.Tensor, count: torch.Tensor | None) -> torch.Tensor | tuple[torch.Tensor, int | None]:
        if not return_count:
            return masks
        return masks, (int(count) if on_host and count is not None else None)

    if strategy == "block":  # CPU loop; skipped (budget 0) for images that stay unmasked
        budgets = [ri * n if kept else 0.0 for ri, kept in zip(r.tolist(), keep.tolist())]
        host_masks = _block_masks(h, w, budgets, generator)
        return done(_to(host_masks, dev), host_masks.sum())

    k = torch.floor(r * n).long()  # [B] tokens to mask (exactly k: order holds distinct tokens)
    kept = torch.where(keep, k, 0)  # [B] masked tokens per image, where the draws are
    if strategy == "random":
        order = _rand((bsz, n), generator, dev).argsort(dim=1)
    else:  # attmask_*: rank tokens by attention, most attended first for high/hint
        order = scores.argsort(dim=1, descending=strategy != "attmask_low", stable=True)
    masks = _first_k(order, _to(k, dev))

    if strategy == "attmask_hint":
        c = int(show_max * n)  # reveal candidates: the c most attended tokens
        us = torch.rand((bsz if per_image_ratio else 1,), generator=generator, device=src, dtype=torch.float64)
        m = torch.floor(show_max * (a + (b - a) * us) * n).long().clamp(max=c).expand(bsz)
        if c > 0:
            # random order of the candidates; pick[i, j] is a rank in ``order``, so a revealed
            # token was masked iff pick[i, j] < k[i] (j < m[i])
            pick = torch.rand((bsz, c), generator=generator, device=src).argsort(dim=1)
            masks &= ~_first_k(order[:, :c].gather(1, _to(pick, dev)), _to(m, dev), n)
            revealed = ((pick < k[:, None]) & (torch.arange(c, device=src)[None, :] < m[:, None])).sum(1)
            kept = torch.where(keep, k - revealed, 0)
    return done(masks & _to(keep, dev)[:, None], kept.sum())


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
    if strategy not in STRATEGIES:
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
