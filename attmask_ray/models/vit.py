"""timm ViT backbone with an AttMask mask token and a cheap [CLS]-attention read-out.

* The mask token replaces masked patch embeddings BEFORE [CLS] is prepended and BEFORE
  position embeddings are added (paper eq. 2/10).
* Position embeddings are resampled for any crop size, so 224 global and 96 local crops
  share one backbone: by default with the DINO/iBOT/AttMask rule (bicubic with
  ``scale_factor = (h + 0.1) / H``, no antialias; ``models/pos_embed.py``), or with timm's
  own ``dynamic_img_size`` resampling when ``model.pos_interp="timm"``.
* The [CLS] attention of any block is computed from that block's own qkv projection
  (captured by a forward hook) as ``softmax(q_cls . K^T / sqrt(d))`` per head, averaged
  over heads: the (n+1)x(n+1) matrix never exists and fused SDPA stays on everywhere.
"""

from __future__ import annotations

import timm
import torch
import torch.nn as nn

from attmask_ray.config import ModelConfig
from attmask_ray.models.pos_embed import resample_patch_pos_embed


class MaskedViT(nn.Module):
    """A timm VisionTransformer (``self.vit``) plus a learnable mask token.

    ``self.vit`` is a plain timm model: its ``state_dict()`` loads into
    ``timm.create_model(arch, pretrained=False, patch_size=..., dynamic_img_size=True,
    num_classes=0)`` strictly. Such a timm model gives the same features at the stored
    grid size; at other input sizes timm resamples position embeddings with its own
    (antialiased) rule, which differs slightly from the reference rule used here by default.
    """

    def __init__(self, cfg: ModelConfig, img_size: int, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        overrides = {k: v for k, v in (("depth", cfg.depth), ("embed_dim", cfg.embed_dim), ("num_heads", cfg.num_heads)) if v is not None}
        self.arch = cfg.arch
        self.vit = timm.create_model(
            cfg.arch, pretrained=False, num_classes=0, img_size=img_size, patch_size=cfg.patch_size,
            dynamic_img_size=True, drop_path_rate=drop_path_rate, **overrides,
        )
        if getattr(self.vit, "cls_token", None) is None:
            raise ValueError(f"model.arch {cfg.arch!r} has no [CLS] token; AttMask needs a ViT with class_token=True")
        self.embed_dim: int = self.vit.embed_dim
        self.depth: int = len(self.vit.blocks)
        self.num_heads: int = self.vit.blocks[0].attn.num_heads
        self.patch_size: int = cfg.patch_size
        self.pos_interp: str = cfg.pos_interp
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))  # z[MASK], zero-init (SPEC §1)

    def grid(self, image_size: tuple[int, int] | int) -> tuple[int, int]:
        """Patch grid (h, w) for an input of the given pixel size."""
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        return h // self.patch_size, w // self.patch_size

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Patch-embed, inject the mask token, prepend [CLS], add position embeddings.

        x: [B, 3, H, W]; mask: BoolTensor [B, h*w] or None -> tokens [B, 1 + h*w, D].
        """
        tokens = self.vit.patch_embed(x)  # [B, h, w, D] with dynamic_img_size
        if mask is not None:
            b, h, w, d = tokens.shape
            if mask.shape != (b, h * w):
                raise ValueError(f"mask shape {tuple(mask.shape)} does not match the {h}x{w} patch grid of a batch of {b}")
            m = mask.view(b, h, w, 1)
            tokens = torch.where(m, self.mask_token.to(tokens.dtype).view(1, 1, 1, d), tokens)
        tokens = self._add_pos_embed(tokens)
        tokens = self.vit.patch_drop(tokens)
        return self.vit.norm_pre(tokens)

    def pos_embed_for(self, grid: tuple[int, int]) -> torch.Tensor:
        """Patch position embeddings for an (h, w) patch grid -> [1, h*w, D] (``pos_interp`` rule)."""
        vit = self.vit
        n_prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
        return resample_patch_pos_embed(vit.pos_embed[:, n_prefix:], tuple(vit.patch_embed.grid_size), grid,
                                        self.pos_interp)

    def _add_pos_embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens [B, h, w, D] -> [B, prefix + h*w, D] with prefix tokens and positions."""
        vit = self.vit
        if self.pos_interp == "timm" or vit.pos_embed is None:
            return vit._pos_embed(tokens)
        b, h, w, d = tokens.shape
        prefix = [t.expand(b, -1, -1) for t in (vit.cls_token, vit.reg_token) if t is not None]
        x = tokens.reshape(b, h * w, d)
        patch_pos = self.pos_embed_for((h, w))
        if vit.no_embed_class:  # positions only on patches, prefix tokens concatenated after
            x = torch.cat(prefix + [x + patch_pos], dim=1)
        else:
            pos = torch.cat([vit.pos_embed[:, :vit.num_prefix_tokens], patch_pos], dim=1)
            x = torch.cat(prefix + [x], dim=1) + pos
        return vit.pos_drop(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                attn_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run the backbone.

        x: [B, 3, H, W]; mask: BoolTensor [B, n] (n = h*w) or None; attn_layer: 1-based
        block whose [CLS] attention to return, or None.
        Returns (tokens [B, 1 + n, D] after the final norm, cls_attn [B, n] or None).
        ``cls_attn`` is the head-mean softmax attention of the [CLS] query over all n+1 keys
        with the [CLS] key dropped (no renormalisation), detached, in float32.
        """
        captured: list[torch.Tensor] = []
        handle = None
        if attn_layer is not None:
            if not 1 <= attn_layer <= self.depth:
                raise ValueError(f"attn_layer must be in [1, {self.depth}], got {attn_layer}")
            handle = self.vit.blocks[attn_layer - 1].attn.qkv.register_forward_hook(
                lambda _m, _i, out: captured.append(out))
        try:
            tokens = self.vit.blocks(self.embed(x, mask))
        finally:
            if handle is not None:
                handle.remove()
        tokens = self.vit.norm(tokens)
        cls_attn = self._cls_attention(captured[0], self.vit.blocks[attn_layer - 1].attn) if captured else None
        return tokens, cls_attn

    @staticmethod
    def _cls_attention(qkv: torch.Tensor, attn: nn.Module) -> torch.Tensor:
        """qkv: [B, N, 3*H*d] of one block -> [B, N-1] head-mean [CLS] attention over patches."""
        with torch.no_grad():
            b, n, _ = qkv.shape
            heads, hd = attn.num_heads, attn.head_dim
            qkv = qkv.detach().float().view(b, n, 3, heads, hd)
            q = attn.q_norm(qkv[:, :1, 0].transpose(1, 2))  # [B, H, 1, d]
            k = attn.k_norm(qkv[:, :, 1].transpose(1, 2))  # [B, H, N, d]
            logits = (q @ k.transpose(-2, -1)).squeeze(2) * attn.scale  # [B, H, N]
            return logits.softmax(dim=-1).mean(dim=1)[:, 1:]

    def intermediate_cls(self, x: torch.Tensor, n_last: int = 4) -> torch.Tensor:
        """Concatenated [CLS] of the last ``n_last`` blocks after the final norm: [B, n_last*D]."""
        tokens = self.embed(x)
        outs = []
        for i, blk in enumerate(self.vit.blocks):
            tokens = blk(tokens)
            if i >= self.depth - n_last:
                outs.append(self.vit.norm(tokens)[:, 0])
        return torch.cat(outs, dim=-1)


def build_backbone(cfg: ModelConfig, img_size: int, student: bool) -> MaskedViT:
    """Student gets drop path ``cfg.drop_path_rate`` (linear over depth); the teacher gets 0."""
    return MaskedViT(cfg, img_size=img_size, drop_path_rate=cfg.drop_path_rate if student else 0.0)
