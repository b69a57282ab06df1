"""Collapse and learning diagnostics: small pure tensor functions, no host synchronisation.

Metric names reported per epoch (train loop, gauges, results.parquet, report):

* ``teacher_entropy``: mean entropy of the teacher [CLS] targets ``softmax((t - c)/T_t)``
  divided by ``ln K``: uniform collapse -> 1, one-hot collapse -> 0.
* ``teacher_student_kl``: mean KL(teacher || student) of the [CLS] distributions, the
  student's global view paired with the teacher's OTHER global view (the loss's
  global-global pairs).
* ``teacher_patch_entropy`` / ``teacher_student_patch_kl``: the same on the masked tokens
  (teacher on the clean view vs student on the masked same view, as L_MIM); iBOT only.
* ``teacher_embed_std``: per-dimension std over the batch of the L2-normalised teacher
  backbone [CLS] embeddings, averaged over dimensions (collapse -> 0, healthy ~ 1/sqrt(d));
  ``embed_std_ratio`` = ``teacher_embed_std * sqrt(d)`` (healthy ~ 1).
* ``val_mean_cosine``: mean pairwise cosine similarity of the val k-NN features.
* ``fg_attention_share`` / ``fg_patch_frac``: share of the teacher's [CLS] attention on
  foreground patches of the val images, and the foreground patch fraction (chance level).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from attmask_ray.masking import packed_index

TRAIN_DIAGNOSTICS = ("teacher_entropy", "teacher_student_kl", "teacher_patch_entropy",
                     "teacher_student_patch_kl", "teacher_embed_std", "embed_std_ratio")
EVAL_DIAGNOSTICS = ("val_mean_cosine", "fg_attention_share", "fg_patch_frac")
DIAGNOSTICS = TRAIN_DIAGNOSTICS + EVAL_DIAGNOSTICS

__all__ = ["DIAGNOSTICS", "EVAL_DIAGNOSTICS", "TRAIN_DIAGNOSTICS", "relative_entropy", "kl_divergence",
           "embedding_std", "mean_pairwise_cosine", "foreground_patches", "foreground_attention_share",
           "masked_mean", "step_diagnostics", "ForegroundShare"]


def relative_entropy(probs: Tensor) -> Tensor:
    """Entropy of each distribution divided by ``ln K``.

    probs: ``[..., K]`` probabilities (rows sum to 1) -> ``[...]`` in [0, 1] (float32 or
    float64). Uniform rows give 1, one-hot rows give 0.
    """
    p = probs if probs.dtype == torch.float64 else probs.float()
    k = p.shape[-1]
    if k < 2:
        return torch.zeros(p.shape[:-1], dtype=p.dtype, device=p.device)
    return -torch.special.xlogy(p, p).sum(dim=-1) / math.log(k)


def kl_divergence(p: Tensor, log_q: Tensor) -> Tensor:
    """KL(p || q) per row: ``sum_k p_k (ln p_k - ln q_k)`` with ``0 ln 0 = 0``.

    p: ``[..., K]`` probabilities; log_q: ``[..., K]`` log-probabilities (e.g. log_softmax)
    -> ``[...]`` (>= 0 up to rounding).
    """
    p = p if p.dtype == torch.float64 else p.float()
    log_q = log_q.to(p.dtype)
    return (torch.special.xlogy(p, p) - p * log_q).sum(dim=-1)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` ``[...]`` over the True entries of ``mask`` (same shape); 0 when none."""
    w = mask.to(values.dtype)
    return (values * w).sum() / w.sum().clamp(min=1)


def embedding_std(x: Tensor) -> Tensor:
    """Per-dimension std (unbiased) over the batch of the L2-normalised rows, averaged over dims.

    x: ``[N, d]`` -> scalar. Identical rows -> 0; N = d orthonormal rows -> exactly
    ``1/sqrt(d)``; fewer than 2 rows -> 0.
    """
    if x.shape[0] < 2:
        return torch.zeros((), dtype=torch.float32, device=x.device)
    z = F.normalize(x.float(), dim=-1)
    return z.std(dim=0).mean()


def mean_pairwise_cosine(feats: Tensor) -> Tensor:
    """Mean cosine similarity over all ordered pairs i != j, exact in O(N d).

    feats: ``[N, d]`` (normalised here; already-normalised input is unchanged) -> scalar
    ``(||sum_i f_i||^2 - N) / (N (N - 1))`` computed in float64. Identical rows -> 1,
    orthonormal rows -> 0; fewer than 2 rows -> 0.
    """
    n = feats.shape[0]
    if n < 2:
        return torch.zeros((), dtype=torch.float64, device=feats.device)
    z = F.normalize(feats.double(), dim=-1)
    total = z.sum(dim=0)
    return ((total * total).sum() - n) / (n * (n - 1))


def foreground_patches(images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor,
                       patch: int, threshold: float) -> Tensor:
    """Foreground patches of normalised images (grayscale data: bright object on dark ground).

    images: ``[B, C, H, W]`` normalised as ``(x - mean) / std``; mean/std: ``C`` values.
    A pixel is foreground when its de-normalised intensity ``x * std + mean``, averaged over
    channels, is above ``threshold``; a patch (``patch x patch``, row-major like the ViT's
    tokens) is foreground when MORE than half of its pixels are.
    Returns a BoolTensor ``[B, n]``, ``n = (H // patch) * (W // patch)``.
    """
    c = images.shape[1]
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, c, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, c, 1, 1)
    intensity = (images.float() * s + m).mean(dim=1, keepdim=True)  # [B, 1, H, W]
    frac = F.avg_pool2d((intensity > threshold).float(), kernel_size=patch, stride=patch)
    return (frac > 0.5).flatten(1)


def foreground_attention_share(attn: Tensor, fg: Tensor) -> Tensor:
    """Share of each image's [CLS] attention that falls on foreground patches.

    attn: ``[B, n]`` non-negative attention over patches (need not sum to 1: it is
    renormalised over patches); fg: BoolTensor ``[B, n]``. Returns ``[B]`` in [0, 1]
    (0 for an image whose attention sums to 0).
    """
    a = attn.float()
    return (a * fg.float()).sum(dim=-1) / a.sum(dim=-1).clamp(min=1e-12)


@torch.no_grad()
def step_diagnostics(t_cls: Tensor, s_cls: Tensor, center: Tensor, teacher_temp: float | Tensor,
                     student_temp: float, t_embed: Tensor, n_global: int = 2,
                     t_patch: Tensor | None = None, s_patch: Tensor | None = None, masks: Tensor | None = None,
                     patch_center: Tensor | None = None, patch_temp: float | Tensor | None = None) -> dict[str, Tensor]:
    """The training-step diagnostics from tensors the step already has (detached scalars).

    t_cls: ``[G*B, K]`` teacher [CLS] logits (clean globals, view-major); s_cls:
    ``[(G+m)*B, K]`` student [CLS] logits (globals first); center: the [CLS] centre BEFORE
    this step's update (what the loss uses). Teacher view q is paired with student global
    view ``(q + 1) % G`` (for G = 2: the other view, as in the loss's global-global terms).
    t_embed: ``[G*B, d]`` teacher backbone [CLS] embeddings (std over all G*B rows).
    iBOT only: t_patch ``[G*B, n, Kp]`` teacher patch logits, s_patch student patch logits,
    packed ``[M, Kp]`` (masked tokens in ``masks.nonzero()`` order) or dense ``[G*B, n, Kp]``,
    masks ``[G*B, n]`` bool, patch_center ``[1, 1, Kp]`` (pre-update), patch_temp. Patch
    metrics are token-weighted means over the masked tokens (teacher on the clean view vs
    student on the masked same view, as L_MIM); 0 when no token is masked.
    """
    from attmask_ray.losses import _teacher_probs  # the loss's exact target distribution

    batch = t_cls.shape[0] // n_global
    t_probs = _teacher_probs(t_cls, center, teacher_temp)  # [G*B, K]
    log_q = F.log_softmax(s_cls[: n_global * batch].float() / student_temp, dim=-1)
    log_q = log_q.view(n_global, batch, -1).roll(shifts=-1, dims=0).reshape(n_global * batch, -1)
    embed_std = embedding_std(t_embed)
    out = {"teacher_entropy": relative_entropy(t_probs).mean(),
           "teacher_student_kl": kl_divergence(t_probs, log_q).mean(),
           "teacher_embed_std": embed_std, "embed_std_ratio": embed_std * math.sqrt(t_embed.shape[-1])}
    if s_patch is None or t_patch is None or masks is None or patch_center is None or patch_temp is None:
        return out
    masks = masks.bool()
    if s_patch.dim() == 2:  # packed: M rows, M known on the host
        n_masked = s_patch.shape[0]
        if n_masked == 0:
            zero = torch.zeros((), dtype=torch.float32, device=t_cls.device)
            return {**out, "teacher_patch_entropy": zero, "teacher_student_patch_kl": zero.clone()}
        rows = t_patch.reshape(-1, t_patch.shape[-1]).index_select(0, packed_index(masks, n_masked))
        tp = _teacher_probs(rows, patch_center.reshape(1, -1), patch_temp)
        lq = F.log_softmax(s_patch.float() / student_temp, dim=-1)
        return {**out, "teacher_patch_entropy": relative_entropy(tp).mean(),
                "teacher_student_patch_kl": kl_divergence(tp, lq).mean()}
    tp = _teacher_probs(t_patch, patch_center, patch_temp)  # dense [G*B, n, Kp]
    lq = F.log_softmax(s_patch.float() / student_temp, dim=-1)
    return {**out, "teacher_patch_entropy": masked_mean(relative_entropy(tp), masks),
            "teacher_student_patch_kl": masked_mean(kl_divergence(tp, lq), masks)}


class ForegroundShare:
    """Accumulates, on the device, :func:`foreground_attention_share` and the foreground patch
    fraction over batches (use as ``extract_features(..., on_batch=ForegroundShare(...))``);
    :meth:`read` gives the per-image means ``fg_attention_share`` and ``fg_patch_frac``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], patch: int, threshold: float) -> None:
        self.mean, self.std, self.patch, self.threshold = mean, std, patch, threshold
        self.share: Tensor | float = 0.0
        self.fg_frac: Tensor | float = 0.0
        self.count = 0

    def __call__(self, images: Tensor, attn: Tensor | None) -> None:
        """images: ``[B, C, H, W]`` normalised; attn: ``[B, n]`` [CLS] attention (None: skipped)."""
        if attn is None:
            return
        fg = foreground_patches(images, self.mean, self.std, self.patch, self.threshold)
        self.share = self.share + foreground_attention_share(attn, fg).sum()
        self.fg_frac = self.fg_frac + fg.float().mean(dim=1).sum()
        self.count += images.shape[0]

    def read(self) -> dict[str, float]:
        """Host read of the means over all images seen (0 when none)."""
        n = max(self.count, 1)
        return {"fg_attention_share": float(self.share) / n, "fg_patch_frac": float(self.fg_frac) / n}
