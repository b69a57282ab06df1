"""Fine-tuning for classification (paper Table 6: CIFAR-10/100, Flowers): the whole backbone and a
new linear head on the [CLS] (after the final norm) are trained on a target dataset; top-1 on its
val split.

The recipe is the reference's transfer script (DeiT style, ``evaluation/eval_transfer_finetuning.py``),
every knob an ``eval.finetune_*`` key: AdamW (wd ``finetune_weight_decay``, none on biases, norms,
[CLS] and position embeddings), lr = ``finetune_lr`` x batch / 512 with a per-step linear warm-up
from 1e-6 over ``finetune_warmup_epochs`` then a cosine to ``finetune_min_lr``, stochastic depth
``finetune_drop_path``, mixup / cutmix (``finetune_mixup`` / ``finetune_cutmix``, one per batch,
switch prob 0.5) with label smoothing ``finetune_label_smoothing`` (timm's ``Mixup`` and soft-target
cross-entropy), random erasing (p 0.25, per-pixel noise), bf16 autocast on CUDA. Optional
layer-wise lr decay (BEiT/iBOT): block b of L gets lr x ``finetune_layer_decay`` ^ (L + 1 - b),
embeddings b = 0, final norm and head L + 1; 1.0 (default) is the reference's (none).
Augmentation of the train images: RandomResizedCrop(``finetune_crop_scale``, default 0.08-1) + flip
(the linear probe's loader; small images may need a larger minimum scale); the
reference's RandAugment and colour jitter are not applied (a documented deviation).
``finetune_init = "random"`` trains the same ViT from scratch with the same budget (the baseline
a pre-training must beat). Reported: ``finetune_top1`` (best epoch, as the reference reports its
max accuracy), ``finetune_top5`` at that epoch, ``finetune_last_top1``, ``finetune_best_epoch``.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch
import torch.nn as nn

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, autocast_context
from attmask_ray.eval.linear import topk_hits
from attmask_ray.eval.spec import EvalSpec
from attmask_ray.models import MaskedViT

WARMUP_START_LR = 1e-6  # the reference script's --warmup-lr
RANDOM_ERASING = 0.25  # the reference script's --reprob (mode "pixel")


class Classifier(nn.Module):
    """A backbone and a linear head on its final [CLS]: images [B, 3, G, G] -> logits [B, C]."""

    def __init__(self, backbone: MaskedViT, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.embed_dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.backbone(x)
        return self.head(tokens[:, 0])


def layer_id(name: str, depth: int) -> int:
    """0 for embeddings ([CLS], position, patch embedding), b for block b-1 of ``vit.blocks``,
    depth + 1 for the final norm and the head."""
    if name.startswith(("backbone.vit.cls_token", "backbone.vit.pos_embed", "backbone.vit.patch_embed",
                        "backbone.mask_token", "backbone.vit.reg_token")):
        return 0
    if name.startswith("backbone.vit.blocks."):
        return int(name.split(".")[3]) + 1
    return depth + 1


def param_groups(model: Classifier, weight_decay: float, layer_decay: float) -> list[dict]:
    """AdamW groups: (layer, decayed or not) -> params with ``lr_scale`` = layer_decay^(depth + 1 - layer);
    no weight decay on 1-D parameters (biases, norms) and the [CLS] / position embeddings."""
    depth = model.backbone.depth
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad or name == "backbone.mask_token":  # the mask token is unused without masks
            continue
        decay = p.ndim > 1 and not name.endswith(("cls_token", "pos_embed"))
        lid = layer_id(name, depth)
        group = groups.setdefault((lid, decay), {"params": [], "weight_decay": weight_decay if decay else 0.0,
                                                 "lr_scale": layer_decay ** (depth + 1 - lid)})
        group["params"].append(p)
    return list(groups.values())


def lr_at(step: int, total: int, warmup: int, base: float, final: float) -> float:
    """Linear warm-up from 1e-6 over ``warmup`` steps, then cosine from ``base`` to ``final``."""
    if step < warmup:
        return WARMUP_START_LR + (base - WARMUP_START_LR) * step / warmup
    t = (step - warmup) / max(1, total - warmup)
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model: Classifier, batches: Iterable[Sequence[torch.Tensor]], device: torch.device) -> tuple[float, float]:
    """(top-1 %, top-5 %) of the classifier on (images [B, 3, G, G], labels [B], ...) batches."""
    model.eval()
    c1 = c5 = n = 0
    with autocast_context(device):
        for batch in batches:
            y = torch.as_tensor(batch[1])
            h1, h5 = topk_hits(model(batch[0].to(device).float()).float(), y)
            c1, c5, n = c1 + h1, c5 + h5, n + len(y)
    if n == 0:
        raise EvalError("fine-tuning: the validation split yielded no images")
    return 100.0 * c1 / n, 100.0 * c5 / n


def finetune(backbone: MaskedViT, train_views: Iterable[Sequence[torch.Tensor]],
             val_batches: Iterable[Sequence[torch.Tensor]], num_classes: int, e: Any, seed: int = 0,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """Fine-tune ``backbone`` (modified in place) with a new head; ``e`` is an EvalConfig.

    train_views: re-iterable with a length (batches per epoch), one pass per epoch, of augmented (images [B, 3, G, G], labels [B], ...);
    val_batches: re-iterable centre-crop (images, labels, ...) batches.
    """
    from timm.data import Mixup
    from timm.data.random_erasing import RandomErasing
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    device = torch.device(device)
    torch.manual_seed(seed)
    model = Classifier(backbone, num_classes).to(device)
    lr = e.finetune_lr * e.finetune_batch_size / 512
    opt = torch.optim.AdamW(param_groups(model, e.finetune_weight_decay, e.finetune_layer_decay), lr=lr)
    mixing = e.finetune_mixup > 0 or e.finetune_cutmix > 0
    mixup = Mixup(mixup_alpha=e.finetune_mixup, cutmix_alpha=e.finetune_cutmix, prob=1.0, switch_prob=0.5, mode="batch",
                  label_smoothing=e.finetune_label_smoothing, num_classes=num_classes) if mixing else None
    criterion = SoftTargetCrossEntropy() if mixing else LabelSmoothingCrossEntropy(e.finetune_label_smoothing)
    erase = RandomErasing(RANDOM_ERASING, mode="pixel", device=str(device))
    total = len(train_views) * e.finetune_epochs  # type: ignore[arg-type]
    warmup = len(train_views) * e.finetune_warmup_epochs  # type: ignore[arg-type]
    step, best, last = 0, (-1.0, 0.0, 0), (0.0, 0.0)
    for epoch in range(e.finetune_epochs):
        model.train()
        seen = 0
        for batch in train_views:
            x = batch[0].to(device).float()
            y = torch.as_tensor(batch[1]).long().view(-1).to(device)
            if int(y.max()) >= num_classes:
                raise EvalError(f"fine-tuning: train labels reach {int(y.max())} but the head has {num_classes} classes")
            if mixup is not None:
                if len(y) % 2:  # timm's batch mixup pairs the batch with its reverse: needs an even size
                    x, y = x[:-1], y[:-1]
                if len(y) == 0:
                    continue
                x, y = mixup(x, y)
            x = erase(x)
            scale = lr_at(step, total, warmup, lr, e.finetune_min_lr)
            for g in opt.param_groups:
                g["lr"] = scale * g["lr_scale"]
            with autocast_context(device):
                loss = criterion(model(x).float(), y)
            if not torch.isfinite(loss):
                raise EvalError(f"fine-tuning diverged at epoch {epoch + 1} (loss {float(loss)}); lower eval.finetune_lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(y)
        if seen == 0:
            raise EvalError("fine-tuning: the train split yielded no images")
        last = evaluate(model, val_batches, device)
        if last[0] > best[0]:
            best = (last[0], last[1], epoch + 1)
    return {"finetune_top1": best[0], "finetune_top5": best[1], "finetune_last_top1": last[0],
            "finetune_best_epoch": float(best[2])}


def finetune_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``finetune`` evaluation task: train split (augmented) -> fine-tuned classifier -> val top-1."""
    e = spec.eval_cfg
    ckpt = spec.load()
    cfg = ckpt.config
    backbone = MaskedViT(cfg.model, img_size=cfg.data.global_crop_size, drop_path_rate=e.finetune_drop_path)
    if e.finetune_init == "checkpoint":
        backbone.load_state_dict(ckpt.backbone(spec.which).state_dict())
    else:  # the same ViT from scratch, seeded
        torch.manual_seed(cfg.seed)
        backbone = MaskedViT(cfg.model, img_size=cfg.data.global_crop_size, drop_path_rate=e.finetune_drop_path)
    views = spec.loader_factory(spec.train_path, cfg.data, e.finetune_batch_size, device=str(spec.device), augment=True,
                                crop_scale=tuple(e.finetune_crop_scale))
    n = spec.num_classes
    if n is None:
        n = int(max(int(torch.as_tensor(b[1]).max()) for b in spec.batches(cfg, "train"))) + 1
    return finetune(backbone, views, spec.batches(cfg, "val"), n, e, seed=cfg.seed, device=spec.device)
