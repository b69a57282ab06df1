"""Pure pixel operations (numpy float images [H, W, 3] in [0, 1]) and the PNG grid writer.

The grid writer places every cell with ``Figure.figimage`` (no resampling), so each
cell's pixels in the PNG are exactly the array drawn; matplotlib only adds the text.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MASK_GREY = 0.5  # masked patches are blended towards this grey ...
MASK_ALPHA = 0.8  # ... with this weight (the image stays faintly visible)
HEAD_COLOURS = plt.get_cmap("tab10").colors


def denormalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """images: [B, 3, H, W] normalised -> float array [B, H, W, 3] in [0, 1]."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    x = (images.detach().float().cpu() * s + m).clamp(0, 1)
    return x.permute(0, 2, 3, 1).numpy()


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour integer upscaling: [H, W, C] -> [H*f, W*f, C]."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def patch_map(values: np.ndarray, grid: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Per-patch values [h*w, ...] -> per-pixel [H, W, ...] (each patch a constant block)."""
    h, w = grid
    ph, pw = size[0] // h, size[1] // w
    v = values.reshape(h, w, *values.shape[1:])
    return v.repeat(ph, axis=0).repeat(pw, axis=1)


def grey_out(image: np.ndarray, mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """image [H, W, 3]; mask bool [h*w] (True = masked) -> masked patches greyed over."""
    m = patch_map(mask.astype(np.float32), grid, image.shape[:2])[..., None] * MASK_ALPHA
    return image * (1 - m) + MASK_GREY * m


def heat_overlay(image: np.ndarray, attn: np.ndarray, grid: tuple[int, int],
                 cmap: str = "inferno", weight: float = 0.7) -> np.ndarray:
    """image [H, W, 3]; attn [h*w] -> attention heat map (scaled to this image's range) over it."""
    a = attn - attn.min()
    a = a / a.max() if a.max() > 0 else a
    heat = plt.get_cmap(cmap)(patch_map(a, grid, image.shape[:2]))[..., :3]
    return image * (1 - weight) + heat * weight


def colour_masks(image: np.ndarray, masks: np.ndarray, colours: Sequence[Sequence[float]],
                 grid: tuple[int, int], priority: np.ndarray | None = None,
                 weight: float = 0.6, dim: float = 0.45) -> np.ndarray:
    """image [H, W, 3]; masks bool [k, h*w] -> each mask's patches in its own colour.

    A patch selected by several masks takes the colour of the one with the highest
    ``priority`` [k, h*w] (default: the first); unselected pixels are dimmed by ``dim``.
    """
    sel = masks.astype(bool)  # [k, n]
    cols = np.asarray(colours, dtype=np.float32)[: len(masks), :3]  # [k, 3]
    rank = np.where(sel, priority if priority is not None else -np.arange(len(sel))[:, None], -np.inf)
    col = patch_map(cols[rank.argmax(axis=0)], grid, image.shape[:2])  # [H, W, 3]
    any_sel = patch_map(sel.any(axis=0).astype(np.float32), grid, image.shape[:2])[..., None]
    coloured = image * (1 - weight) + col * weight
    return any_sel * coloured + (1 - any_sel) * image * dim


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [H, W, 3] in [0, 1] -> uint8 (rounded), the exact pixels the PNG holds."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class GridLayout:
    """Where each cell landed in the PNG: cell (r, c) occupies rows top..top+cell_h."""

    left: int
    top: int
    cell_h: int
    cell_w: int
    pad: int
    width: int
    height: int

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of cell (row, col) in PNG pixel coordinates."""
        return (self.top + row * (self.cell_h + self.pad), self.left + col * (self.cell_w + self.pad),
                self.cell_h, self.cell_w)


def save_grid(cells: Sequence[Sequence[np.ndarray]], col_titles: Sequence[str],
              row_titles: Sequence[str], title: str, out: str | Path,
              pad: int = 6, left: int | None = None, title_lines: int = 1, subtitle_lines: int = 2,
              dpi: int = 100) -> GridLayout:
    """Write a rows x cols grid of equally sized float images [h, w, 3] to a PNG, pixel-exact.

    Returns the layout so callers (and tests) can find each cell in the PNG.
    """
    rows, ncols = len(cells), len(cells[0])
    if rows == 0 or ncols == 0 or any(len(r) != ncols for r in cells):
        raise ValueError("cells must be a non-empty rectangular grid")
    ch, cw = cells[0][0].shape[:2]
    left = left if left is not None else 14 + 6 * max((len(t) for t in row_titles), default=2)
    line = 13  # pixels per text line at fontsize 9 / dpi 100
    width = left + ncols * cw + (ncols - 1) * pad + pad
    title = "\n".join(textwrap.wrap(title, width=max(20, (width - 16) // 9)))  # <= 9 px per bold char
    title_lines = max(title_lines, title.count("\n") + 1)
    top = 8 + (line + 2) * title_lines + 6 + line * subtitle_lines + 4
    height = top + rows * ch + (rows - 1) * pad + pad
    layout = GridLayout(left, top, ch, cw, pad, width, height)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    try:
        fig.text(0.5, 1 - 6 / height, title, ha="center", va="top", fontsize=10, fontweight="bold")
        for c, name in enumerate(col_titles):
            _, x0, _, _ = layout.cell_box(0, c)
            fig.text((x0 + cw / 2) / width, 1 - (top - 3) / height, name, ha="center", va="bottom",
                     fontsize=8, linespacing=1.1)
        for r, name in enumerate(row_titles):
            y0, _, _, _ = layout.cell_box(r, 0)
            fig.text((left - 6) / width, 1 - (y0 + ch / 2) / height, name, ha="right", va="center",
                     fontsize=8, wrap=True)
        for r, row in enumerate(cells):
            for c, img in enumerate(row):
                if img.shape[:2] != (ch, cw):
                    raise ValueError(f"cell ({r}, {c}) has shape {img.shape[:2]}, expected {(ch, cw)}")
                y0, x0, _, _ = layout.cell_box(r, c)
                fig.figimage(to_uint8(img), xo=x0, yo=height - (y0 + ch), origin="upper")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi, facecolor="white")
    finally:
        plt.close(fig)
    return layout
