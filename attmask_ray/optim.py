"""Optimiser helpers (SPEC §5): AdamW parameter groups, per-step schedule application,
per-parameter gradient clipping, last-layer freezing and the teacher EMA update.

Everything here is free of host synchronisations (no ``.item()``), so it can run inside
an asynchronous CUDA training step.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch
from torch import Tensor, nn

__all__ = [
    "param_groups",
    "apply_schedule",
    "clip_gradients",
    "cancel_last_layer_grads",
    "ema_update",
    "unwrap",
]

NamedParams = Iterable[tuple[str, nn.Parameter]]


def unwrap(module: nn.Module) -> nn.Module:
    """Strip DDP/FSDP-style ``.module`` and ``torch.compile`` ``._orig_mod`` wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel | nn.DataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def _named(model_or_params: nn.Module | NamedParams) -> list[tuple[str, nn.Parameter]]:
    if isinstance(model_or_params, nn.Module):
        return list(unwrap(model_or_params).named_parameters())
    return list(model_or_params)


def param_groups(model: nn.Module, weight_decay: float = 0.0) -> list[dict]:
    """AdamW parameter groups as in iBOT's ``get_params_groups``.

    No weight decay for ``name.endswith(".bias")`` or ``param.ndim <= 1``; everything
    else (including pos-embed, [CLS] and mask tokens, which are >= 2-D) is decayed.
    Frozen parameters (``requires_grad=False``) are left out; empty groups are dropped.
    Each group carries ``apply_wd`` (whether :func:`apply_schedule` sets its weight decay)
    and ``param_names``.
    """
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    for name, p in unwrap(model).named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if name.endswith(".bias") or p.ndim <= 1 else decay).append((name, p))
    groups = [
        {"params": [p for _, p in decay], "param_names": [n for n, _ in decay],
         "weight_decay": weight_decay, "apply_wd": True},
        {"params": [p for _, p in no_decay], "param_names": [n for n, _ in no_decay],
         "weight_decay": 0.0, "apply_wd": False},
    ]
    return [g for g in groups if g["params"]]


def apply_schedule(optimizer: torch.optim.Optimizer, lr: float, wd: float) -> None:
    """Set ``lr`` on every group and ``weight_decay = wd`` on groups with ``apply_wd``
    (groups without the flag are treated as decayed, like a plain AdamW group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if group.get("apply_wd", True):
            group["weight_decay"] = wd


@torch.no_grad()
def clip_gradients(model_or_params: nn.Module | Iterable[Tensor], clip: float) -> Tensor:
    """Per-parameter gradient clipping like the reference ``clip_gradients``.

    Each gradient ``g`` with norm ``||g||`` is multiplied by ``clip / (||g|| + 1e-6)``
    when that factor is below 1.  ``clip <= 0`` disables the clipping (norms are still
    returned).  Parameters without gradient are skipped.

    Returns:
        ``[P]`` float32 tensor of the pre-clipping gradient norms, in parameter order
        (on the device of the first gradient; empty on CPU if there is none).
    """
    params = (
        unwrap(model_or_params).parameters()
        if isinstance(model_or_params, nn.Module)
        else model_or_params
    )
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    # foreach kernels want same device & dtype per call: group, keep original order
    by_key: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, g in enumerate(grads):
        by_key[(g.device, g.dtype)].append(i)
    out_device = grads[0].device
    norms: list[Tensor] = [grads[0]] * len(grads)  # placeholders, all overwritten
    for idxs in by_key.values():
        group = [grads[i] for i in idxs]
        group_norms = torch.stack(torch._foreach_norm(group)).float()
        if clip > 0:
            coefs = (clip / (group_norms + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(group, list(coefs.to(group[0].dtype).unbind()))
        for j, n in zip(idxs, group_norms.to(out_device).unbind()):
            norms[j] = n
    return torch.stack(norms)


@torch.no_grad()
def cancel_last_layer_grads(
    model_or_params: nn.Module | NamedParams,
    epoch: int,
    freeze_last_layer: int = 1,
    set_to_none: bool = True,
) -> None:
    """Cancel gradients of parameters whose name contains ``"last_layer"`` while
    ``epoch < freeze_last_layer``.

    ``set_to_none=True`` (reference behaviour) drops the gradient so AdamW skips the
    parameter entirely (no moment or weight-decay update); ``False`` zeroes it in place.
    Accepts a module or an iterable of ``(name, param)`` pairs.
    """
    if epoch >= freeze_last_layer:
        return
    for name, p in _named(model_or_params):
        if "last_layer" in name and p.grad is not None:
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher = m * teacher + (1 - m) * student`` for every parameter name present in
    both (wrappers such as DDP are stripped); buffers are not touched, like the
    reference.  ``momentum`` is a Python float (e.g. from :class:`Schedules`)."""
    student_params = dict(unwrap(student).named_parameters())
    t_list: list[Tensor] = []
    s_list: list[Tensor] = []
    for name, t in unwrap(teacher).named_parameters():
        s = student_params.get(name)
        if s is not None:
            if s.shape != t.shape:
                raise ValueError(f"shape mismatch for {name}: {s.shape} vs {t.shape}")
            t_list.append(t)
            s_list.append(s.detach())
    if not t_list:
        return
    # group by (device, dtype) for the foreach fast path
    groups: dict[tuple, tuple[list[Tensor], list[Tensor]]] = defaultdict(lambda: ([], []))
    for t, s in zip(t_list, s_list):
        ts, ss = groups[(t.device, t.dtype, s.device, s.dtype)]
        ts.append(t)
        ss.append(s)
    for (_, t_dtype, _, s_dtype), (ts, ss) in groups.items():
        if t_dtype == s_dtype:
            # lerp: t + (1 - m) (s - t), the same maths as m t + (1 - m) s in one pass over the
            # teacher (one multi-tensor kernel instead of a mul and an add kernel)
            torch._foreach_lerp_(ts, ss, 1.0 - momentum)
        else:  # lerp needs equal dtypes
            torch._foreach_mul_(ts, momentum)
            torch._foreach_add_(ts, ss, alpha=1.0 - momentum)
