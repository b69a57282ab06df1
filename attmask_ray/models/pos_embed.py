"""Position embeddings of a ViT resampled to another patch grid (SPEC §1).

Two rules, chosen by ``model.pos_interp``:

* ``"reference"`` (default, DINO/iBOT/AttMask): bicubic ``F.interpolate`` with
  ``scale_factor = ((h + 0.1) / H, (w + 0.1) / W)`` for an h x w target grid and a stored
  H x W grid, no antialias. The +0.1 keeps the output size from rounding down; because
  a scale factor (not a size) is given, the sampling positions use that factor, which is
  what makes this differ from timm's rule on every grid other than the stored one.
* ``"timm"``: timm's ``resample_abs_pos_embed`` (``size=(h, w)``, bicubic, antialias),
  what ``timm.create_model(..., dynamic_img_size=True)`` does on its own.

The stored grid itself is returned unchanged by both rules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POS_INTERP_MODES = ("reference", "timm")


def resample_patch_pos_embed(patch_pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                             mode: str = "reference") -> torch.Tensor:
    """Patch position embeddings [1, H*W, D] on grid ``old_grid`` = (H, W) -> [1, h*w, D].

    ``mode``: "reference" (DINO/iBOT rule) or "timm" (timm's antialiased resampling).
    Computed in float32 (float64 stays float64) and returned in the input's dtype.
    """
    if mode not in POS_INTERP_MODES:
        raise ValueError(f"pos_interp must be one of {POS_INTERP_MODES}, got {mode!r}")
    (gh, gw), (h, w) = old_grid, new_grid
    if (h, w) == (gh, gw):
        return patch_pos
    d = patch_pos.shape[-1]
    if mode == "timm":
        from timm.layers import resample_abs_pos_embed

        return resample_abs_pos_embed(patch_pos, new_size=(h, w), old_size=(gh, gw), num_prefix_tokens=0)
    dtype = patch_pos.dtype
    work = patch_pos if dtype == torch.float64 else patch_pos.float()
    grid = work.reshape(1, gh, gw, d).permute(0, 3, 1, 2)  # [1, D, H, W]
    out = F.interpolate(grid, scale_factor=((h + 0.1) / gh, (w + 0.1) / gw), mode="bicubic", align_corners=False)
    if out.shape[-2:] != (h, w):  # cannot happen for positive grids; guards the +0.1 rule
        raise RuntimeError(f"position-embedding resample gave {tuple(out.shape[-2:])}, expected {(h, w)}")
    return out.permute(0, 2, 3, 1).reshape(1, h * w, d).to(dtype)
