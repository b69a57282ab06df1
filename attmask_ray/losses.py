"""Self-distillation losses for AttMask pre-training (SPEC §4).

Normalisation follows the iBOT / AttMask reference implementation:

* Teacher targets are ``softmax((t - c) / T_t)`` (detached), the student uses
  ``log_softmax(s / T_s)`` with ``T_s = 0.1``.  Both are computed in float32 (float64
  inputs stay float64), so the losses are safe under bf16 autocast.
* [CLS] terms (L_G + L_LC): for every teacher global view ``q`` and every student
  view ``v != q`` one cross-entropy (mean over the batch); the sum is divided by the
  number of pairs ``n_global * n_views - n_global`` (= ``2 * (2 + m) - 2``).
* MIM term (L_MIM): for every global view, per-image sum of the cross-entropy over the
  masked tokens divided by ``max(#masked, 1)``, then the mean over the batch (images
  without a masked token add 0 but count in the denominator); summed over the global
  views and divided by their number.
* Centres are EMAs (momentum 0.9) of the all-reduced teacher batch means, updated
  AFTER the loss is computed, i.e. the loss always uses the pre-update centre.

Neither loss performs a host synchronisation.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from attmask_ray.masking import packed_index

__all__ = ["Centering", "IBOTLoss", "DINOLoss", "cls_distillation_loss", "koleo_loss"]


def _dist_ready() -> bool:
    return dist.is_available() and dist.is_initialized()


class Centering(nn.Module):
    """EMA centre of the teacher outputs, kept as a (checkpointable) float32 buffer.

    ``shape`` is ``(1, K)`` for [CLS] outputs and ``(1, 1, K)`` for patch outputs.
    """

    center: Tensor

    def __init__(self, shape: tuple[int, ...], momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("center", torch.zeros(shape, dtype=torch.float32))

    @torch.no_grad()
    def update(self, teacher_out: Tensor) -> None:
        """EMA update from a batch of teacher outputs ``[..., K]``.

        The batch mean is taken over every dimension but the last (for patches: over
        all patches of all images), then averaged over ranks if distributed.
        """
        dims = tuple(range(teacher_out.dim() - 1))
        self.update_from_mean(teacher_out.float().mean(dim=dims))

    @torch.no_grad()
    def update_from_mean(self, batch_mean: Tensor) -> None:
        """EMA update from this rank's precomputed batch mean ``[K]`` (any shape
        with K elements).  All-reduced (SUM / world size) when distributed."""
        batch_mean = batch_mean.detach().float().reshape(self.center.shape).clone()
        if _dist_ready():
            dist.all_reduce(batch_mean)
            batch_mean = batch_mean / dist.get_world_size()
        self.center.mul_(self.momentum).add_(batch_mean, alpha=1.0 - self.momentum)


def _f32(x: Tensor) -> Tensor:
    """Upcast half/bf16 to float32 (float64 inputs keep their precision)."""
    return x if x.dtype == torch.float64 else x.float()


def _teacher_probs(teacher: Tensor, center: Tensor, temp: float | Tensor) -> Tensor:
    """Detached ``softmax((t - c) / T)`` over the last dim, in (at least) float32."""
    return F.softmax((_f32(teacher.detach()) - center) / temp, dim=-1)


def cls_distillation_loss(
    student_cls: Tensor, teacher_probs: Tensor, n_global: int, student_temp: float
) -> Tensor:
    """[CLS] cross-entropy over all (teacher global view q, student view v != q) pairs.

    Args:
        student_cls: ``[V * B, K]`` student logits, views stacked (globals first).
        teacher_probs: ``[n_global * B, K]`` teacher probabilities (already centred,
            sharpened, detached).
    Returns:
        scalar: sum of per-pair batch-mean cross-entropies / number of pairs.
    """
    batch = teacher_probs.shape[0] // n_global
    n_views = student_cls.shape[0] // batch
    if n_views * batch != student_cls.shape[0] or n_views < n_global:
        raise ValueError(
            f"student_cls {tuple(student_cls.shape)} incompatible with "
            f"{n_global} teacher views of batch {batch}"
        )
    log_p = F.log_softmax(_f32(student_cls) / student_temp, dim=-1)
    log_p = log_p.view(n_views, batch, -1)
    t = teacher_probs.view(n_global, batch, -1)
    # ce[q, v] = mean_b CE(teacher_q[b], student_v[b])  -> [n_global, n_views]
    ce = -torch.einsum("qbk,vbk->qv", t, log_p) / batch
    off_diag = ~torch.eye(n_global, n_views, dtype=torch.bool, device=ce.device)
    n_pairs = n_global * n_views - n_global
    return (ce * off_diag).sum() / n_pairs


def koleo_loss(embeddings: Tensor, eps: float = 1e-8) -> Tensor:
    """KoLeo regulariser (Sablayrolles et al. 2019, as used by DINOv2): the negative mean log
    distance of every L2-normalised embedding to its nearest other embedding in the batch.

    It is lowest when the embeddings spread evenly over the sphere, so it counters the
    near-constant [CLS] embeddings that self-distillation can drift into on small data.

    Args:
        embeddings: ``[B, D]`` (B >= 2), any float dtype; computed in float32 with autocast off.
    Returns:
        scalar ``-mean_i log(||x_i - x_nn(i)|| + eps)`` with ``x = normalise(embeddings)``.
    """
    if embeddings.dim() != 2 or embeddings.shape[0] < 2:
        raise ValueError(f"koleo_loss needs [B, D] embeddings with B >= 2, got {tuple(embeddings.shape)}")
    with torch.autocast(embeddings.device.type, enabled=False):
        x = F.normalize(_f32(embeddings), dim=-1, eps=eps)
        with torch.no_grad():  # the neighbour choice is not differentiated (as in DINOv2)
            sims = x @ x.t()
            sims.fill_diagonal_(-2.0)
            nearest = sims.argmax(dim=1)
        distances = (x - x[nearest]).norm(dim=-1)
        return -torch.log(distances + eps).mean()


class DINOLoss(nn.Module):
    """DINO [CLS]-only self-distillation loss (L_G + L_LC) with one centre."""

    def __init__(
        self,
        out_dim: int,
        n_global: int = 2,
        n_local: int = 0,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        self.n_global, self.n_local = n_global, n_local
        self.student_temp = student_temp
        self.center = Centering((1, out_dim), center_momentum)

    def forward(
        self, student_cls: Tensor, teacher_cls: Tensor, teacher_temp: float | Tensor
    ) -> dict[str, Tensor]:
        """
        Args:
            student_cls: ``[(n_global + n_local) * B, K]``, globals first in view order.
            teacher_cls: ``[n_global * B, K]`` teacher logits on the clean global views.
            teacher_temp: teacher temperature for this step.
        Returns:
            ``{"loss", "cls"}`` scalars (identical here).  Updates the centre afterwards.
        """
        _check_views(student_cls, teacher_cls, self.n_global, self.n_local)
        probs = _teacher_probs(teacher_cls, self.center.center, teacher_temp)
        loss = cls_distillation_loss(student_cls, probs, self.n_global, self.student_temp)
        self.center.update(teacher_cls)
        return {"loss": loss, "cls": loss}


class IBOTLoss(nn.Module):
    """iBOT / AttMask loss: [CLS] self-distillation + masked image modelling (MIM).

    Patch inputs come in one of two forms:

    * **dense**: ``student_patch`` ``[G*B, n, K]`` and ``teacher_patch`` ``[G*B, n, K]``
      for the ``G = n_global`` global views (view-major: rows ``q*B:(q+1)*B`` are view q).
    * **packed** (memory saving): ``student_patch`` ``[M, K]`` holds only the masked
      tokens, ``M = masks.sum()``, in the order of ``masks.nonzero()`` (row-major over
      ``[G*B, n]``: image by image, token index increasing).  ``teacher_patch`` is then
      either dense ``[G*B, n, K]`` (gathered here, and used in full for the centre) or
      packed ``[M, K]`` in the same order; in the packed-teacher case the caller must pass
      ``teacher_patch_mean`` ``[K]``: this rank's mean of the teacher patch logits over
      ALL ``G*B*n`` tokens, needed for the patch centre update.

    Both forms give the same loss.  The form is chosen by ``student_patch.dim()``.
    """

    def __init__(
        self,
        out_dim: int,
        patch_out_dim: int,
        n_global: int = 2,
        n_local: int = 0,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        lambda_mim: float = 1.0,
    ) -> None:
        super().__init__()
        self.n_global, self.n_local = n_global, n_local
        self.student_temp = student_temp
        self.lambda_mim = lambda_mim
        self.center = Centering((1, out_dim), center_momentum)
        self.center_patch = Centering((1, 1, patch_out_dim), center_momentum)

    def forward(
        self,
        student_cls: Tensor,
        student_patch: Tensor,
        teacher_cls: Tensor,
        teacher_patch: Tensor,
        masks: Tensor,
        teacher_temp: float | Tensor,
        teacher_patch_temp: float | Tensor,
        teacher_patch_mean: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """
        Args:
            student_cls: ``[(G + m) * B, K]`` student [CLS] logits, globals first.
            student_patch: ``[G*B, n, K]`` (dense) or ``[M, K]`` (packed, see class doc).
            teacher_cls: ``[G*B, K]`` teacher [CLS] logits on the clean global views.
            teacher_patch: ``[G*B, n, K]`` or, with a packed student, ``[M, K]``.
            masks: ``[G*B, n]`` bool, True = token masked for the student.
            teacher_temp / teacher_patch_temp: temperatures for this step.
            teacher_patch_mean: ``[K]``, required only for a packed ``teacher_patch``.
        Returns:
            ``{"loss": cls + lambda_mim * mim, "cls": ..., "mim": ...}`` scalars.
            The centres are updated (no_grad) after the loss is computed.
        """
        _check_views(student_cls, teacher_cls, self.n_global, self.n_local)
        masks = masks.bool()
        probs = _teacher_probs(teacher_cls, self.center.center, teacher_temp)
        cls_loss = cls_distillation_loss(student_cls, probs, self.n_global, self.student_temp)

        if student_patch.dim() == 3:
            mim = self._mim_dense(student_patch, teacher_patch, masks, teacher_patch_temp)
        elif student_patch.dim() == 2:
            if teacher_patch.dim() == 2 and teacher_patch_mean is None:
                raise ValueError("packed teacher_patch requires teacher_patch_mean")
            mim = self._mim_packed(student_patch, teacher_patch, masks, teacher_patch_temp)
        else:
            raise ValueError(f"student_patch must be 2-D or 3-D, got {student_patch.dim()}-D")

        total = cls_loss + self.lambda_mim * mim

        self.center.update(teacher_cls)
        if teacher_patch.dim() == 3:
            self.center_patch.update(teacher_patch)
        else:
            assert teacher_patch_mean is not None
            self.center_patch.update_from_mean(teacher_patch_mean)
        return {"loss": total, "cls": cls_loss, "mim": mim}

    def _mim_dense(
        self, student_patch: Tensor, teacher_patch: Tensor, masks: Tensor, temp: float | Tensor
    ) -> Tensor:
        """student/teacher ``[G*B, n, K]``, masks ``[G*B, n]`` -> scalar."""
        if student_patch.shape != teacher_patch.shape or student_patch.shape[:2] != masks.shape:
            raise ValueError(
                f"patch shapes differ: student {tuple(student_patch.shape)}, "
                f"teacher {tuple(teacher_patch.shape)}, masks {tuple(masks.shape)}"
            )
        t = _teacher_probs(teacher_patch, self.center_patch.center, temp)
        log_p = F.log_softmax(_f32(student_patch) / self.student_temp, dim=-1)
        ce = -(t * log_p).sum(dim=-1)  # [G*B, n]
        per_image = (ce * masks).sum(dim=-1) / masks.sum(dim=-1).clamp(min=1)
        return self._view_mean(per_image)

    def _mim_packed(
        self, student_patch: Tensor, teacher_patch: Tensor, masks: Tensor, temp: float | Tensor
    ) -> Tensor:
        """student ``[M, K]``, teacher ``[M, K]`` or ``[G*B, n, K]``, masks ``[G*B, n]``."""
        n_img, n_tok = masks.shape
        n_masked = student_patch.shape[0]  # M, a Python int: no host sync needed
        # Flat indices of the masked tokens in nonzero() order, without a sync: a stable
        # sort puts all True entries first, keeping their original order.
        idx = packed_index(masks, n_masked)
        if teacher_patch.dim() == 3:
            teacher_patch = teacher_patch.reshape(n_img * n_tok, -1).index_select(0, idx)
        if teacher_patch.shape != student_patch.shape:
            raise ValueError(
                f"packed shapes differ: student {tuple(student_patch.shape)}, "
                f"teacher {tuple(teacher_patch.shape)}"
            )
        t = _teacher_probs(teacher_patch, self.center_patch.center.view(1, -1), temp)
        log_p = F.log_softmax(_f32(student_patch) / self.student_temp, dim=-1)
        ce = -(t * log_p).sum(dim=-1)  # [M]
        image_of = torch.div(idx, n_tok, rounding_mode="floor")
        per_image = torch.zeros(n_img, dtype=ce.dtype, device=ce.device)
        per_image = per_image.index_add(0, image_of, ce)
        per_image = per_image / masks.sum(dim=-1).clamp(min=1)
        return self._view_mean(per_image)

    def _view_mean(self, per_image: Tensor) -> Tensor:
        """``[G*B]`` per-image losses -> mean over batch per view, summed, / G."""
        per_view = per_image.view(self.n_global, -1).mean(dim=1)
        return per_view.sum() / self.n_global


def _check_views(student_cls: Tensor, teacher_cls: Tensor, n_global: int, n_local: int) -> None:
    batch, rem = divmod(teacher_cls.shape[0], n_global)
    expected = (n_global + n_local) * batch
    if rem or student_cls.shape[0] != expected:
        raise ValueError(
            f"expected teacher_cls [{n_global}*B, K] and student_cls "
            f"[({n_global}+{n_local})*B, K]; got {tuple(teacher_cls.shape)}, "
            f"{tuple(student_cls.shape)}"
        )
