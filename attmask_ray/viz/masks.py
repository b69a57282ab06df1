"""The masks picture (paper Fig. A6/A7 + Fig. 3b): rows are images, columns strategies.

Masks are drawn with ``masking_prob = 1`` so every row shows one, at a fixed ratio r
(``pred_ratio = (r, r)``); each (strategy, ratio) column uses its own generator seeded
with ``seed`` so the picture can be reproduced exactly with ``generate_masks``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from attmask_ray.masking import STRATEGIES, generate_masks
from attmask_ray.viz.render import GridLayout, grey_out, heat_overlay, save_grid, upscale

MaskKey = tuple[str, float]


def strategy_masks(scores: torch.Tensor, grid: tuple[int, int], strategies: Sequence[str] = tuple(STRATEGIES),
                   ratios: Sequence[float] = (0.3,), show_max: float = 0.1,
                   seed: int = 0) -> dict[MaskKey, torch.Tensor]:
    """Masks per (strategy, ratio): scores [B, n] -> {(strategy, r): BoolTensor [B, n]}.

    Equals ``generate_masks(scores, grid, strategy, ratio=(r, r), prob=1.0,
    show_max=show_max, generator=torch.Generator().manual_seed(seed))`` for each key.
    """
    out: dict[MaskKey, torch.Tensor] = {}
    for r in ratios:
        for strategy in strategies:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            out[(strategy, float(r))] = generate_masks(scores.float().cpu(), grid, strategy, ratio=(r, r),
                                                       prob=1.0, show_max=show_max, generator=gen)
    return out


def cell_scale(size: int, min_cell: int = 112) -> int:
    """Integer upscaling so that a crop of ``size`` pixels is drawn at least ``min_cell`` wide."""
    return max(1, -(-min_cell // size))


def draw_masks_figure(images: np.ndarray, masks: dict[MaskKey, torch.Tensor], attn: torch.Tensor | None,
                      grid: tuple[int, int], out: str | Path, title: str,
                      row_titles: Sequence[str] | None = None, scale: int | None = None) -> GridLayout:
    """Write the masks grid PNG.

    images: float [B, H, W, 3] in [0, 1]; masks: {(strategy, r): BoolTensor [B, h*w]}
    (columns in dict order); attn: [B, h*w] head-mean [CLS] attention or None (no column).
    Columns: image | one per mask key | [CLS] attention. Cells are upscaled by ``scale``
    (nearest; default: to at least 112 px). Returns the layout of cells in the PNG.
    """
    b, size = images.shape[0], images.shape[1]
    for key, m in masks.items():
        if tuple(m.shape) != (b, grid[0] * grid[1]):
            raise ValueError(f"mask {key} has shape {tuple(m.shape)}, expected {(b, grid[0] * grid[1])}")
    f = scale or cell_scale(size)
    cols = ["image"] + [f"{s}\nr = {r:g}" for s, r in masks] + ([" [CLS] attention\n(head mean)"] if attn is not None else [])
    cells = []
    for i in range(b):
        img = upscale(images[i], f)
        row = [img] + [grey_out(img, m[i].cpu().numpy(), grid) for m in masks.values()]
        if attn is not None:
            row.append(heat_overlay(img, attn[i].float().cpu().numpy(), grid))
        cells.append(row)
    rows = list(row_titles) if row_titles is not None else [f"#{i}" for i in range(b)]
    return save_grid(cells, cols, rows, title, out)
