"""[CLS] attention read-outs for pictures: head-mean (what AttMask masks with) and per head.

The per-head map is computed like ``MaskedViT._cls_attention`` (from the block's own qkv
projection, captured by a forward hook) but WITHOUT the mean over heads, so the model
API stays untouched and fused attention stays on.
"""

from __future__ import annotations

import torch

from attmask_ray.models import MaskedViT


@torch.no_grad()
def cls_attention(backbone: MaskedViT, images: torch.Tensor, layer: int) -> torch.Tensor:
    """Head-mean [CLS] attention of block ``layer`` (1-based), as training uses it.

    images: [B, 3, H, W] normalised -> [B, n] float32 (n = h*w), softmax over n+1 keys,
    [CLS] key dropped, no renormalisation.
    """
    _, attn = backbone(images, attn_layer=layer)
    return attn


@torch.no_grad()
def cls_attention_per_head(backbone: MaskedViT, images: torch.Tensor, layer: int) -> torch.Tensor:
    """Per-head [CLS] attention of block ``layer`` (1-based).

    images: [B, 3, H, W] -> [B, heads, n] float32; its mean over heads equals
    :func:`cls_attention`.
    """
    if not 1 <= layer <= backbone.depth:
        raise ValueError(f"layer must be in [1, {backbone.depth}], got {layer}")
    block_attn = backbone.vit.blocks[layer - 1].attn
    captured: list[torch.Tensor] = []
    handle = block_attn.qkv.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        backbone(images)
    finally:
        handle.remove()
    qkv = captured[0].float()
    b, n, _ = qkv.shape
    heads, hd = block_attn.num_heads, block_attn.head_dim
    qkv = qkv.view(b, n, 3, heads, hd)
    q = block_attn.q_norm(qkv[:, :1, 0].transpose(1, 2))  # [B, H, 1, d]
    k = block_attn.k_norm(qkv[:, :, 1].transpose(1, 2))  # [B, H, N, d]
    logits = (q @ k.transpose(-2, -1)).squeeze(2) * block_attn.scale  # [B, H, N]
    return logits.softmax(dim=-1)[:, :, 1:]


def top_mass_masks(attn: torch.Tensor, mass: float = 0.6) -> torch.Tensor:
    """Smallest set of most-attended patches holding ``mass`` of each map's attention.

    attn: [..., n] non-negative -> BoolTensor [..., n] (DINO's "top 60% mass" patches;
    each map is renormalised over its n patches first).
    """
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    a = attn / attn.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    vals, order = a.sort(dim=-1, descending=True)
    before = vals.cumsum(dim=-1) - vals  # mass of the strictly more attended patches
    keep_sorted = before < mass
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
