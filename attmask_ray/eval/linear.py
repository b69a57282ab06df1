"""Linear probe on frozen features (SPEC §6, DINO's ``eval_linear`` recipe).

Features: concatenated [CLS] of the last 4 blocks after the final norm ("cls4").
Classifier: one ``nn.Linear`` (weight ~ N(0, 0.01), bias 0); SGD momentum 0.9, no
weight decay, lr = base_lr * batch / 256, cosine annealing to 0 over the epochs
(stepped per epoch); validation after every epoch; the BEST val top-1 is reported.

Two modes:
  * ``fast`` (:func:`train_linear`): cached centre-crop features, no augmentation.
  * ``full`` (:func:`train_linear_augmented`): every epoch the train images are new
    RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) + horizontal-flip views of the full
    image (:class:`attmask_ray.data.LinearProbeLoader`), then the frozen backbone. Val
    features are cached (the backbone is frozen, so they equal a per-epoch centre-crop pass).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, backbone_features
from attmask_ray.eval.spec import EvalSpec, num_classes_of
from attmask_ray.models import MaskedViT


def make_linear(in_dim: int, num_classes: int) -> nn.Linear:
    """nn.Linear with DINO's init: weight ~ N(0, 0.01), bias 0."""
    layer = nn.Linear(in_dim, num_classes)
    nn.init.normal_(layer.weight, mean=0.0, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


@torch.no_grad()
def topk_hits(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """(top-1 hits, top-5 hits) of logits [B, C] against labels [B] (top-C when C < 5)."""
    y = labels.to(logits.device).long().view(-1, 1)
    pred = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return int(pred[:, :1].eq(y).sum()), int(pred.eq(y).any(1).sum())


@torch.no_grad()
def accuracy(layer: nn.Linear, feats: torch.Tensor, labels: torch.Tensor, batch: int = 4096) -> tuple[float, float]:
    """(top1 %, top5 %) of ``layer`` on feats [N, D], labels [N]."""
    c1 = c5 = 0
    device = layer.weight.device
    for i in range(0, len(labels), batch):
        h1, h5 = topk_hits(layer(feats[i:i + batch].to(device)), labels[i:i + batch])
        c1, c5 = c1 + h1, c5 + h5
    return 100.0 * c1 / len(labels), 100.0 * c5 / len(labels)


def _check(train_labels: torch.Tensor, val_labels: torch.Tensor, num_classes: int) -> None:
    if len(train_labels) == 0:
        raise EvalError("linear probe: the train split is empty")
    if len(val_labels) == 0:
        raise EvalError("linear probe: the validation split is empty")
    top = max(int(train_labels.max()), int(val_labels.max()))
    if top >= num_classes:
        raise EvalError(f"linear probe: labels reach {top} but num_classes={num_classes}: train and val must share one class list")


def fit_linear(layer: nn.Linear, epochs: int, lr: float, batch_size: int,
               epoch_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
               val_feats: torch.Tensor | None = None, val_labels: torch.Tensor | None = None) -> dict[str, float]:
    """Train ``layer`` in place (SGD momentum 0.9, no wd, lr x batch/256, cosine over ``epochs``) on
    ``epoch_batches(epoch)`` of (features [B, D], labels [B]); with val features, score it after every
    epoch and return the best and last top-1 (keys of :func:`train_linear`), else return {}."""
    opt = torch.optim.SGD(layer.parameters(), lr=lr * batch_size / 256, momentum=0.9, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=0.0)
    best = (-1.0, 0.0, 0)
    last = (0.0, 0.0)
    device = layer.weight.device
    for epoch in range(epochs):
        layer.train()
        for x, y in epoch_batches(epoch):
            loss = F.cross_entropy(layer(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        layer.eval()
        if val_feats is None:
            continue
        last = accuracy(layer, val_feats, val_labels)
        if last[0] > best[0]:
            best = (last[0], last[1], epoch + 1)
    if val_feats is None:
        return {}
    return {"linear_top1": best[0], "linear_top5": best[1], "linear_best_epoch": float(best[2]),
            "linear_last_top1": last[0]}


def shuffled_batches(feats: torch.Tensor, labels: torch.Tensor, batch_size: int,
                     seed: int) -> Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]:
    """``epoch -> batches`` of cached feats [N, D] and labels [N], a new seeded shuffle each epoch."""
    g = torch.Generator().manual_seed(seed)
    labels = labels.long()

    def batches(_epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(labels), generator=g)
        for i in range(0, len(perm), batch_size):
            j = perm[i:i + batch_size]
            yield feats[j], labels[j]

    return batches


def train_linear(train_feats: torch.Tensor, train_labels: torch.Tensor, val_feats: torch.Tensor,
                 val_labels: torch.Tensor, num_classes: int, epochs: int = 100, lr: float = 1e-3,
                 batch_size: int = 256, seed: int = 0, device: str | torch.device = "cpu") -> dict[str, float]:
    """Fast mode on cached features. train_feats [N, D], val_feats [M, D], labels [N]/[M].

    Returns {"linear_top1": best val top-1 %, "linear_top5": top-5 % at that epoch,
    "linear_best_epoch": 1-based, "linear_last_top1": %}.
    """
    _check(train_labels, val_labels, num_classes)
    torch.manual_seed(seed)
    layer = make_linear(train_feats.shape[1], num_classes).to(device)
    return fit_linear(layer, epochs, lr, batch_size, shuffled_batches(train_feats, train_labels, batch_size, seed),
                      val_feats, val_labels.long())


def train_linear_augmented(backbone: MaskedViT, train_views: Iterable[Sequence[torch.Tensor]],
                           val_feats: torch.Tensor, val_labels: torch.Tensor, num_classes: int,
                           epochs: int = 100, lr: float = 1e-3, batch_size: int = 256, seed: int = 0,
                           device: str | torch.device = "cpu") -> dict[str, float]:
    """Full mode: frozen backbone on freshly augmented train views each epoch.

    train_views: re-iterable, one pass per epoch, of (images [B, 3, G, G] already cropped,
    flipped and normalised, labels [B], ...); val_feats: cached "cls4" features [M, 4*D].
    Returns the same keys as train_linear.
    """
    device = torch.device(device)
    if len(val_labels) == 0:
        raise EvalError("linear probe: the validation split is empty")
    torch.manual_seed(seed)
    layer = make_linear(val_feats.shape[1], num_classes).to(device)
    backbone.eval()

    def batches(_epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        seen = 0
        for batch in train_views:
            feats, _ = backbone_features(backbone, batch[0].to(device).float(), ("cls4",))
            y = torch.as_tensor(batch[1]).long().view(-1)
            if int(y.max()) >= num_classes:
                raise EvalError(f"linear probe: train labels reach {int(y.max())} but num_classes={num_classes}")
            seen += len(y)
            yield feats["cls4"], y
        if seen == 0:
            raise EvalError("linear probe: the train split is empty")

    return fit_linear(layer, epochs, lr, batch_size, batches, val_feats, val_labels.long())


def linear_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``linear`` evaluation task: the linear probe in ``eval.linear_mode`` ("fast": cached
    "cls4" features; "full": augmented views through the frozen backbone every epoch)."""
    e = spec.eval_cfg
    ckpt = spec.load()
    if spec.num_classes is not None or len(train):
        n = num_classes_of(train, val, spec.num_classes)
    else:  # full mode without any train features: classes seen in val
        n = int(val.labels.max()) + 1
    if e.linear_mode == "fast":
        return train_linear(train["cls4"], train.labels, val["cls4"], val.labels, n, epochs=e.linear_epochs,
                            lr=e.linear_lr, batch_size=e.linear_batch_size, seed=ckpt.config.seed, device=spec.device)
    backbone = ckpt.backbone(spec.which, spec.device)
    views = spec.loader_factory(spec.train_path, ckpt.config.data, e.linear_batch_size, device=str(spec.device),
                                augment=True)
    return train_linear_augmented(backbone, views, val["cls4"], val.labels, n, epochs=e.linear_epochs, lr=e.linear_lr,
                                  batch_size=e.linear_batch_size, seed=ckpt.config.seed, device=spec.device)
