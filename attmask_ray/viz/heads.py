"""The heads picture (paper Fig. A5): each head's top-60%-mass [CLS]-attention patches.

Rows are images; columns: image | all heads together (each head in its own colour; a
patch chosen by several heads takes the colour of the head that gives it the largest
share of its attention) | one column per head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from attmask_ray.viz.attention import top_mass_masks
from attmask_ray.viz.masks import cell_scale
from attmask_ray.viz.render import HEAD_COLOURS, GridLayout, colour_masks, save_grid, upscale


def draw_heads_figure(images: np.ndarray, head_attn: torch.Tensor, grid: tuple[int, int], out: str | Path,
                      title: str, mass: float = 0.6, row_titles: Sequence[str] | None = None,
                      scale: int | None = None) -> GridLayout:
    """Write the per-head PNG.

    images: float [B, H, W, 3] in [0, 1]; head_attn: [B, heads, h*w] per-head [CLS]
    attention. Returns the layout of cells in the PNG.
    """
    b, heads, n = head_attn.shape
    if n != grid[0] * grid[1] or b != images.shape[0]:
        raise ValueError(f"head_attn shape {tuple(head_attn.shape)} does not match {images.shape[0]} images on grid {grid}")
    attn = head_attn.float().cpu()
    sel = top_mass_masks(attn, mass).numpy()  # [B, heads, n]
    share = (attn / attn.sum(dim=-1, keepdim=True).clamp_min(1e-12)).numpy()  # each head's mass per patch
    colours = [HEAD_COLOURS[h % len(HEAD_COLOURS)] for h in range(heads)]
    f = scale or cell_scale(images.shape[1])
    cols = ["image", f"all {heads} heads\n(top {mass:.0%} mass)"] + [f"head {h + 1}" for h in range(heads)]
    cells = []
    for i in range(b):
        img = upscale(images[i], f)
        row = [img, colour_masks(img, sel[i], colours, grid, priority=share[i])]
        row += [colour_masks(img, sel[i, h:h + 1], colours[h:h + 1], grid) for h in range(heads)]
        cells.append(row)
    rows = list(row_titles) if row_titles is not None else [f"#{i}" for i in range(b)]
    return save_grid(cells, cols, rows, title, out)
