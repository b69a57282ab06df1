"""Frozen-backbone feature extraction, shared by every evaluation.

Kinds of feature (SPEC §6):
  * ``"cls"``  last-layer [CLS] after the final norm: [N, D] (k-NN, few-shot, masked).
  * ``"gap"``  global average pooling of the normed patch tokens: [N, D] (Table A10).
  * ``"cls4"`` concatenated [CLS] of the last 4 blocks after the final norm: [N, 4*D]
    (linear probe).
Features are returned UN-normalised in float32 on the CPU; k-NN normalises them itself.
Extraction takes any iterable of ``(images [B, 3, H, W], labels [B], ...)`` batches, so
it runs on the FFCV eval loader (:mod:`attmask_ray.eval.loaders`), in-memory splits
(:mod:`attmask_ray.eval.in_memory`) or anything in between.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.models import MaskedViT

KINDS = ("cls", "gap", "cls4")


@dataclass
class Features:
    """Features of one split: ``feats[kind]`` [N, D_kind] float32, ``labels`` [N] int64.

    ``attn`` [N, n] holds the last-layer [CLS] attention over patches when requested.
    """

    feats: dict[str, torch.Tensor]
    labels: torch.Tensor
    attn: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, kind: str) -> torch.Tensor:
        if kind not in self.feats:
            raise EvalError(f"feature kind {kind!r} was not extracted (have: {', '.join(self.feats) or 'none'})")
        return self.feats[kind]


def autocast_context(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; a no-op on the CPU (CPU bf16 would change the numbers, not speed them)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def backbone_features(backbone: MaskedViT, images: torch.Tensor, kinds: Sequence[str],
                      with_attn: bool = False, attn_layer: int | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """One no-grad forward. images: [B, 3, H, W] -> ({kind: [B, D_kind] float32}, attn [B, n] or None).

    ``attn`` is the [CLS] attention of block ``attn_layer`` (1-based; None = the last block)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise EvalError(f"unknown feature kind(s) {unknown}; allowed: {', '.join(KINDS)}")
    out: dict[str, torch.Tensor] = {}
    attn = None
    with autocast_context(images.device):
        if "cls" in kinds or "gap" in kinds or with_attn:
            tokens, attn = backbone(images, attn_layer=(attn_layer or backbone.depth) if with_attn else None)
            if "cls" in kinds:
                out["cls"] = tokens[:, 0].float()
            if "gap" in kinds:
                out["gap"] = tokens[:, 1:].float().mean(dim=1)
        if "cls4" in kinds:
            out["cls4"] = backbone.intermediate_cls(images, n_last=min(4, backbone.depth)).float()
    return out, attn


@torch.no_grad()
def extract_features(backbone: MaskedViT, batches: Iterable[Sequence[torch.Tensor]],
                     kinds: Sequence[str] = ("cls",), device: str | torch.device = "cpu",
                     with_attn: bool = False, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     name: str = "split", attn_layer: int | None = None,
                     on_batch: Callable[[torch.Tensor, torch.Tensor | None], None] | None = None) -> Features:
    """Run ``backbone`` (eval mode, no grad, autocast on CUDA) over every batch.

    batches: iterable of ``(images [B, 3, H, W], labels [B], ...)``; extra items ignored.
    transform: optional ``images -> images`` applied on the device before the forward.
    attn_layer: block of the returned [CLS] attention (1-based; None = last) when ``with_attn``.
    on_batch: optional ``(images [B, 3, H, W], attn [B, n] or None) -> None`` called on the
    device tensors of every batch (e.g. to accumulate statistics without keeping images).
    Returns :class:`Features` with ``feats[kind]`` [N, D_kind] float32 on the CPU.
    """
    device = torch.device(device)
    backbone.eval()
    chunks: dict[str, list[torch.Tensor]] = {k: [] for k in kinds}
    labels: list[torch.Tensor] = []
    attns: list[torch.Tensor] = []
    for batch in batches:
        images, y = batch[0], batch[1]
        images = images.to(device, non_blocking=True).float()
        if transform is not None:
            images = transform(images)
        out, attn = backbone_features(backbone, images, kinds, with_attn, attn_layer)
        if on_batch is not None:
            on_batch(images, attn)
        for k in kinds:
            chunks[k].append(out[k].cpu())
        labels.append(torch.as_tensor(y).view(-1).long().cpu())
        if attn is not None:
            attns.append(attn.float().cpu())
    if not labels or sum(len(y) for y in labels) == 0:
        raise EvalError(f"the {name} split yielded no images: check the dataset path and that it holds samples")
    return Features({k: torch.cat(v) for k, v in chunks.items()}, torch.cat(labels),
                    torch.cat(attns) if attns else None)
