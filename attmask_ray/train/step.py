"""The pure AttMask training step (no Ray): one call = one optimiser update.

    teacher(clean globals) -> [CLS]/patch targets + [CLS] attention of one layer
    generate_masks(attention, grid, strategy, ratio, p) -> masks [2B, n]
    student(masked globals, locals) -> iBOT (or DINO) loss -> backward -> clip -> AdamW
    EMA teacher; centres updated inside the loss after it is computed

No host synchronisation on CUDA (masks are drawn on the CPU and copied without waiting; the
number of masked tokens is known on the host from those draws). Scalars are returned as
tensors; the caller decides when to read them.
Masks are drawn from a generator seeded by (seed, rank, step), so a resumed run redraws
exactly the masks it would have drawn.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from attmask_ray.diagnostics import step_diagnostics
from attmask_ray.losses import koleo_loss
from attmask_ray.masking import STRATEGIES, generate_masks, mask_ratio
from attmask_ray.optim import apply_schedule, cancel_last_layer_grads, clip_gradients, ema_update, unwrap
from attmask_ray.schedules import StepValues
from attmask_ray.train.state import TrainingState, autocast_dtype


def _no_mark(_name: str) -> None:
    return None


def mask_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """CPU generator whose state is a pure function of (seed, rank, step)."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63 - 1))
    return g


def train_step(state: TrainingState, crops: list[torch.Tensor], rank: int = 0,
               patch_mode: str = "masked", mark: Callable[[str], None] | None = None,
               diagnostics: bool = False) -> dict[str, torch.Tensor]:
    """One AttMask/iBOT step on ``crops`` = [g1, g2, l1..lm] ([B,3,G,G] x2, [B,3,L,L] x m).

    ``patch_mode`` "masked" runs the student patch head on masked tokens only (same maths
    as "all", which is kept as the straightforward reference path).
    ``mark(name)``, when given, is called at the end of each phase ("teacher", "masks",
    "student", "loss", "backward", "optimizer") for profiling (it may synchronise).
    Returns detached scalar tensors: loss, cls, mim, koleo (0 when off), masked_ratio, lr, wd, momentum,
    teacher_temp. ``diagnostics=True`` adds the collapse diagnostics of
    :func:`attmask_ray.diagnostics.step_diagnostics` (no_grad, from this step's tensors,
    with the pre-update centres; the loss, gradients and updates are unchanged).
    Advances ``state.step``.
    """
    mark = mark or _no_mark
    cfg, step = state.cfg, state.step
    values = state.schedules(step)
    apply_schedule(state.optimizer, values.lr, values.wd)
    n_global = 2
    globals_ = torch.cat(crops[:n_global])
    locals_ = torch.cat(crops[n_global:]) if len(crops) > n_global else None
    dtype = autocast_dtype(cfg.optim.precision, state.device)
    autocast = torch.autocast(state.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    ibot = cfg.loss.variant == "ibot"
    mk = cfg.mask
    needs_attention = STRATEGIES[mk.strategy].needs_attention

    with autocast:
        t_out = state.teacher.teacher_forward(
            globals_, cfg.attn_layer if needs_attention else None, with_patches=ibot, with_embed=diagnostics)
        t_cls, t_patch, attn = t_out[:3]
        mark("teacher")
        grid = unwrap(state.student).backbone.grid(tuple(globals_.shape[-2:]))
        masks, n_masked = generate_masks(
            attn if needs_attention else None, grid, mk.strategy, ratio=mk.pred_ratio, prob=mk.masking_prob,
            show_max=mk.show_max, per_image_ratio=mk.per_image_ratio,
            generator=mask_generator(cfg.seed, rank, step), batch_size=globals_.shape[0], device=globals_.device,
            return_count=True)
        mark("masks")
        # n_masked (known on the host from the CPU draws) lets the student pack the masked tokens
        # without reading the device: the whole step queues without a host sync
        koleo_weight = cfg.loss.koleo_weight
        s_cls, s_patch, *s_embed = state.student(globals_, masks, locals_, patch_mode=patch_mode if ibot else "none",
                                                 n_masked=n_masked, with_embed=koleo_weight > 0)
        mark("student")
        diag = _diagnostics(state, t_out, s_cls, s_patch, masks, values) if diagnostics else {}
        if ibot:
            out = state.loss(s_cls, s_patch, t_cls, t_patch, masks, values.teacher_temp, values.teacher_patch_temp)
        else:
            out = state.loss(s_cls, t_cls, values.teacher_temp)
            out = {**out, "mim": torch.zeros((), device=globals_.device)}
        if koleo_weight > 0:  # summed over the global views, each its own batch (as DINOv2)
            koleo = sum(koleo_loss(view) for view in s_embed[0].chunk(n_global))
            out = {**out, "loss": out["loss"] + koleo_weight * koleo, "koleo": koleo}
        mark("loss")
    state.optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    mark("backward")
    clip_gradients(state.student, cfg.optim.clip_grad)
    cancel_last_layer_grads(state.student, state.epoch, cfg.optim.freeze_last_layer)
    state.optimizer.step()
    ema_update(state.teacher, state.student, values.momentum)
    mark("optimizer")
    state.step += 1
    return {
        "loss": out["loss"].detach(), "cls": out["cls"].detach(), "mim": out["mim"].detach(),
        "koleo": out["koleo"].detach() if "koleo" in out else torch.zeros((), device=globals_.device),
        "masked_ratio": mask_ratio(masks),
        "lr": torch.tensor(values.lr), "wd": torch.tensor(values.wd),
        "momentum": torch.tensor(values.momentum), "teacher_temp": torch.tensor(values.teacher_temp),
        **diag,
    }


def _diagnostics(state: TrainingState, t_out: tuple, s_cls: torch.Tensor, s_patch: torch.Tensor | None,
                 masks: torch.Tensor, values: StepValues) -> dict[str, torch.Tensor]:
    """Step diagnostics, called before the loss so the centres are the ones the loss uses."""
    loss = state.loss
    patch_center = getattr(loss, "center_patch", None)
    return step_diagnostics(
        t_out[0], s_cls.detach(), loss.center.center, values.teacher_temp, loss.student_temp, t_out[3],
        n_global=loss.n_global, t_patch=t_out[1], s_patch=None if s_patch is None else s_patch.detach(),
        masks=masks, patch_center=None if patch_center is None else patch_center.center,
        patch_temp=values.teacher_patch_temp)
