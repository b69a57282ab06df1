"""DINO / iBOT projection heads (SPEC §1).

MLP dim -> hidden -> hidden -> bottleneck (GELU, no norm), L2-normalise, then a
weight-normalised linear bottleneck -> K without bias. iBOT shares the MLP between the
[CLS] and patch tokens; ``shared_head`` also shares the last layer (K = patch K).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


def _last_layer(bottleneck_dim: int, out_dim: int, norm_last_layer: bool) -> nn.Module:
    layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
    g = layer.parametrizations.weight.original0
    with torch.no_grad():
        g.fill_(1.0)
    g.requires_grad_(not norm_last_layer)
    return layer


class IBOTHead(nn.Module):
    """Projection head for [CLS] and (optionally) patch tokens.

    ``forward(cls [..., D]) -> [..., K]``; ``forward_patch(tokens [..., D]) -> [..., K_patch]``.
    """

    def __init__(self, in_dim: int, out_dim: int, patch_out_dim: int | None = None, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, shared_head: bool = True, norm_last_layer: bool = False) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = _last_layer(bottleneck_dim, out_dim, norm_last_layer)
        patch_out_dim = patch_out_dim or out_dim
        self.last_layer2 = None if shared_head else _last_layer(bottleneck_dim, patch_out_dim, norm_last_layer)

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(x), dim=-1, p=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[CLS] tokens [..., D] -> logits [..., K]."""
        return self.last_layer(self._project(x))

    def forward_patch(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens [..., D] -> logits [..., K_patch]."""
        last = self.last_layer2 if self.last_layer2 is not None else self.last_layer
        return last(self._project(x))
