"""Robustness to hidden salient parts (paper Table A11).

For every validation image, the last-layer [CLS] attention of an attention model (the
evaluated checkpoint's own teacher unless another is given) ranks the patches; the
``floor(r * n)`` most attended patches (same count rule as AttMask masking, SPEC §3)
are blacked out and the evaluated backbone's k-NN top-1 (against UN-masked train
features) is measured for every ratio r, with its drop vs r = 0.

"Black out" = the patch's pixels become black, i.e. pixel value 0 BEFORE normalisation
(the paper's), which in the normalised tensors we feed the model is ``-mean / std`` per
channel (not 0, which would be mid-grey).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch

from attmask_ray.checkpoint import load_checkpoint
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, backbone_features
from attmask_ray.eval.knn import knn_classify
from attmask_ray.eval.spec import EvalSpec
from attmask_ray.metrics import HEADLINE_K
from attmask_ray.models import MaskedViT


def top_attended_mask(attn: torch.Tensor, ratio: float) -> torch.Tensor:
    """attn: [B, n] patch scores -> BoolTensor [B, n] True at the floor(ratio*n) highest scores."""
    if not 0.0 <= ratio < 1.0:
        raise EvalError(f"masked ratio must be in [0, 1), got {ratio}")
    b, n = attn.shape
    count = int(math.floor(ratio * n + 1e-9))
    mask = torch.zeros(b, n, dtype=torch.bool, device=attn.device)
    if count > 0:
        mask.scatter_(1, attn.topk(count, dim=1).indices, True)
    return mask


def black_out(images: torch.Tensor, mask: torch.Tensor, patch_size: int,
              mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Set the pixels of masked patches to black (0 before normalisation).

    images: [B, 3, H, W] normalised; mask: BoolTensor [B, (H/p)*(W/p)] row-major grid.
    Returns a new tensor; unmasked pixels are untouched.
    """
    b, c, h, w = images.shape
    gh, gw = h // patch_size, w // patch_size
    if mask.shape != (b, gh * gw):
        raise EvalError(f"mask {tuple(mask.shape)} does not match the {gh}x{gw} patch grid of {h}x{w} images")
    pixel = mask.view(b, 1, gh, gw).repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
    full = torch.zeros(b, 1, h, w, dtype=torch.bool, device=images.device)
    full[:, :, :gh * patch_size, :gw * patch_size] = pixel
    black = (-torch.tensor(mean, dtype=images.dtype, device=images.device)
             / torch.tensor(std, dtype=images.dtype, device=images.device)).view(1, c, 1, 1)
    return torch.where(full, black, images)


def ratio_key(ratio: float) -> str:
    return f"r{int(round(ratio * 100))}"


@torch.no_grad()
def masked_val_features(backbone: MaskedViT, batches: Iterable[Sequence[torch.Tensor]], ratios: Sequence[float],
                        mean: Sequence[float], std: Sequence[float], kind: str = "cls",
                        attn_backbone: MaskedViT | None = None,
                        device: str | torch.device = "cpu") -> tuple[dict[float, torch.Tensor], torch.Tensor]:
    """Features of the validation images with the top-r attended patches blacked out.

    Returns ({ratio: feats [M, D]}, labels [M]). ``attn_backbone`` (default: ``backbone``)
    supplies the last-layer [CLS] attention on the clean image.
    """
    device = torch.device(device)
    attn_model = attn_backbone if attn_backbone is not None else backbone
    backbone.eval()
    attn_model.eval()
    out: dict[float, list[torch.Tensor]] = {r: [] for r in ratios}
    labels = []
    for batch in batches:
        images = batch[0].to(device).float()
        clean, attn = backbone_features(attn_model, images, (kind,) if attn_model is backbone else (), with_attn=True)
        for r in ratios:
            if r == 0 and attn_model is backbone:
                feats = clean[kind]
            else:
                feats = backbone_features(backbone, black_out(images, top_attended_mask(attn, r), backbone.patch_size,
                                                              mean, std), (kind,))[0][kind]
            out[r].append(feats.cpu())
        labels.append(torch.as_tensor(batch[1]).long().view(-1))
    if not labels:
        raise EvalError("masked robustness: the validation split yielded no images")
    return {r: torch.cat(v) for r, v in out.items()}, torch.cat(labels)


def masked_robustness(val_feats: dict[float, torch.Tensor], val_labels: torch.Tensor, train_feats: torch.Tensor,
                      train_labels: torch.Tensor, k: int = HEADLINE_K, temperature: float = 0.07,
                      num_classes: int | None = None, device: str | torch.device | None = None) -> dict[str, float]:
    """k-NN top-1 per ratio and its drop vs r = 0 (or vs the smallest ratio given).

    val_feats: {ratio: [M, D]}; train_feats: [N, D] un-masked. Returns
    {"masked_r30_top1": %, "masked_r30_drop": % points, ...}.
    """
    out: dict[str, float] = {}
    for r in sorted(val_feats):
        out[f"masked_{ratio_key(r)}_top1"] = knn_classify(train_feats, train_labels, val_feats[r], val_labels, ks=(k,),
                                                          temperature=temperature, num_classes=num_classes,
                                                          device=device)[k][0]
    base = out[f"masked_{ratio_key(min(val_feats))}_top1"]
    for r in sorted(val_feats):
        out[f"masked_{ratio_key(r)}_drop"] = base - out[f"masked_{ratio_key(r)}_top1"]
    return out


def masked_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``masked`` evaluation task: k-NN (k = 20) of val images with their most attended patches
    blacked out, for every ``eval.masked_ratios`` (and 0), against the un-masked train features."""
    e = spec.eval_cfg
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)
    if spec.attn_checkpoint is None:
        attn_backbone = backbone if spec.which == "teacher" else ckpt.backbone("teacher", spec.device)
    else:
        attn_backbone = load_checkpoint(spec.attn_checkpoint).backbone("teacher", spec.device)
    ratios = tuple(sorted(set(e.masked_ratios) | {0.0}))
    feats, labels = masked_val_features(backbone, spec.batches(ckpt.config, "val"), ratios, ckpt.config.data.mean,
                                        ckpt.config.data.std, kind=e.knn_feature, attn_backbone=attn_backbone,
                                        device=spec.device)
    n = spec.num_classes if spec.num_classes is not None else int(train.labels.max()) + 1
    if int(labels.max()) >= n:
        raise EvalError(f"validation labels reach {int(labels.max())} but the train split has only {n} classes")
    return masked_robustness(feats, labels, train[e.knn_feature], train.labels, k=HEADLINE_K,
                             temperature=e.knn_temperature, num_classes=n, device=spec.device)
