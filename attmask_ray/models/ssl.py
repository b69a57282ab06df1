"""Student / teacher network: MaskedViT backbone + IBOTHead, with the multi-crop forwards.

The student forward is ``SSLModel.forward`` so that DDP wraps the whole computation.
Crops of equal size are batched into one backbone call (globals together, locals
together).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from attmask_ray.masking import packed_index
from attmask_ray.models.head import IBOTHead
from attmask_ray.models.vit import MaskedViT

PATCH_MODES = ("masked", "all", "none")
TeacherOut = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]  # cls logits, patch logits, attention
TeacherOutWithEmbed = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]  # + [CLS] embeddings


def masked_tokens(tokens: torch.Tensor, masks: torch.Tensor, n_masked: int | None = None,
                  skip: int = 0) -> torch.Tensor:
    """``tokens[:, skip:][masks]``: tokens [B, skip + n, D], masks [B, n] bool -> [M, D] in
    ``masks.nonzero()`` order (``skip`` leading tokens, e.g. [CLS], are never selected).

    With ``n_masked`` = M known on the host, no host sync: a stable sort puts the True
    entries first in their original order and the first M rows are gathered; an
    asynchronous device assert checks M (a wrong count stops the run on the device).
    """
    if n_masked is None:
        return tokens[:, skip:][masks]
    n = masks.shape[1]
    torch._assert_async(masks.sum() == n_masked, "n_masked does not match the masks")
    idx = packed_index(masks, n_masked)  # i * n + t
    rows = idx + (torch.div(idx, n, rounding_mode="floor") + 1) * skip  # i * (skip + n) + skip + t
    return tokens.reshape(-1, tokens.shape[-1]).index_select(0, rows)


class SSLModel(nn.Module):
    """``backbone`` (MaskedViT) + ``head`` (IBOTHead): one student or teacher network."""

    def __init__(self, backbone: MaskedViT, head: IBOTHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, global_crops: torch.Tensor, masks: torch.Tensor | None,
                local_crops: torch.Tensor | None = None,
                patch_mode: str = "masked", n_masked: int | None = None,
                with_embed: bool = False) -> tuple[torch.Tensor, ...]:
        """Student forward over all views.

        global_crops: [G*B, 3, Hg, Wg] (views stacked view-major); masks: BoolTensor
        [G*B, n] or None; local_crops: [m*B, 3, Hl, Wl] or None (never masked).
        patch_mode: "masked" -> patch logits only at masked positions, packed [M, K] in
        ``masks.nonzero()`` order (what the MIM loss uses); "all" -> dense [G*B, n, K];
        "none" -> no patch head (DINO variant).
        n_masked: ``masks.sum()`` when the caller knows it on the host (``generate_masks(...,
        return_count=True)``): the masked tokens are then gathered without a host sync
        (boolean indexing has to read the count from the device); the result is the same.
        Returns (cls logits [(G+m)*B, K] with globals first, patch logits or None); with
        ``with_embed`` a third item, the global views' backbone [CLS] embeddings [G*B, D]
        (after the final norm, before the head; what the KoLeo regulariser spreads).
        """
        if patch_mode not in PATCH_MODES:
            raise ValueError(f"patch_mode must be one of {PATCH_MODES}, got {patch_mode!r}")
        tokens, _ = self.backbone(global_crops, masks)
        cls_tokens = global_embed = tokens[:, 0]
        if local_crops is not None and local_crops.shape[0] > 0:
            local_tokens, _ = self.backbone(local_crops)
            cls_tokens = torch.cat([cls_tokens, local_tokens[:, 0]])
        cls_logits = self.head(cls_tokens)
        patch_logits = None
        if patch_mode == "all":
            patch_logits = self.head.forward_patch(tokens[:, 1:])
        elif patch_mode == "masked":
            if masks is None:
                raise ValueError("patch_mode='masked' needs masks")
            patch_logits = self.head.forward_patch(masked_tokens(tokens, masks, n_masked, skip=1))
        if with_embed:
            return cls_logits, patch_logits, global_embed
        return cls_logits, patch_logits

    @torch.no_grad()
    def teacher_forward(self, global_crops: torch.Tensor, attn_layer: int | None,
                        with_patches: bool = True, with_embed: bool = False) -> TeacherOut | TeacherOutWithEmbed:
        """One teacher pass on the clean global views giving targets AND the attention map.

        global_crops: [G*B, 3, H, W] -> (cls logits [G*B, K], patch logits [G*B, n, K] or
        None, [CLS] attention [G*B, n] from block ``attn_layer`` or None). ``with_embed``
        appends a 4th item, the backbone [CLS] embeddings [G*B, D] (after the final norm,
        before the head; for diagnostics); the first three are the same either way.
        """
        tokens, attn = self.backbone(global_crops, attn_layer=attn_layer)
        cls_logits = self.head(tokens[:, 0])
        patch_logits = self.head.forward_patch(tokens[:, 1:]) if with_patches else None
        if with_embed:
            return cls_logits, patch_logits, attn, tokens[:, 0]
        return cls_logits, patch_logits, attn
