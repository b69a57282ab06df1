"""Everything a run carries between steps: networks, loss (with centres), optimiser, schedules.

``TrainingState.build`` is the single place that turns an ExperimentConfig into the
objects the step needs; the Ray loop, the benchmark and the tests all use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from attmask_ray.config import ExperimentConfig
from attmask_ray.losses import DINOLoss, IBOTLoss
from attmask_ray.models import SSLModel, build_model
from attmask_ray.optim import param_groups, unwrap
from attmask_ray.schedules import Schedules, scaled_lr


def resolve_device(use_gpu: bool) -> torch.device:
    """The CUDA device of this process when asked for and available, else the CPU."""
    if use_gpu and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def compile_network(model: SSLModel, keep_eager_block: int | None = None) -> None:
    """torch.compile each transformer block and the head in place (state_dict keys unchanged).

    ``keep_eager_block`` (1-based) stays eager: the teacher's attention read-out hooks its
    qkv projection, and a hook added to a compiled block would force recompiles.
    """
    blocks = model.backbone.vit.blocks
    if keep_eager_block is None:
        blocks.compile()  # one graph per crop size; per-block compiles would recompile per drop-path rate
    else:
        for i, block in enumerate(blocks, start=1):
            if i != keep_eager_block:
                block.compile()
    model.head.compile(dynamic=True)  # the student's patch head sees a varying number of masked tokens


def adamw_implementation(params: list[torch.Tensor]) -> dict[str, bool]:
    """AdamW kernel flags: ``fused`` when every parameter is on CUDA (one multi-tensor kernel
    per dtype doing the whole update, no per-step host work), else ``foreach`` (the CPU path)."""
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    return {"fused": fused, "foreach": not fused}


IMPLEMENTATION_KEYS = ("fused", "foreach")


@dataclass
class TrainingState:
    cfg: ExperimentConfig
    student: nn.Module  # SSLModel, possibly DDP-wrapped
    teacher: SSLModel
    loss: IBOTLoss | DINOLoss
    optimizer: torch.optim.Optimizer
    schedules: Schedules
    device: torch.device
    step: int = 0

    @classmethod
    def build(cls, cfg: ExperimentConfig, steps_per_epoch: int, device: torch.device | str = "cpu") -> "TrainingState":
        """Fresh student/teacher (teacher = copy of student, drop path 0), loss, AdamW, schedules."""
        device = torch.device(device)
        torch.manual_seed(cfg.seed)
        student = build_model(cfg.model, cfg.data.global_crop_size, student=True).to(device)
        teacher = build_model(cfg.model, cfg.data.global_crop_size, student=False).to(device)
        teacher.load_state_dict(student.state_dict())
        teacher.requires_grad_(False)
        teacher.eval()
        m = cfg.data.local_crops_number
        if cfg.loss.variant == "ibot":
            loss: IBOTLoss | DINOLoss = IBOTLoss(cfg.model.out_dim, cfg.model.patch_out_dim, 2, m,
                                                 cfg.loss.student_temp, cfg.loss.center_momentum, cfg.loss.lambda_mim)
        else:
            loss = DINOLoss(cfg.model.out_dim, 2, m, cfg.loss.student_temp, cfg.loss.center_momentum)
        loss = loss.to(device)
        if cfg.model.compile:
            compile_network(student)
            compile_network(teacher, keep_eager_block=cfg.attn_layer)
        o = cfg.optim
        groups = param_groups(student, o.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0,
                                      **adamw_implementation([p for g in groups for p in g["params"]]))
        schedules = Schedules(
            lr=scaled_lr(o.lr, o.batch_size), epochs=o.epochs, steps_per_epoch=steps_per_epoch, min_lr=o.min_lr,
            warmup_epochs=o.warmup_epochs, weight_decay=o.weight_decay, weight_decay_end=o.weight_decay_end,
            momentum_teacher=o.momentum_teacher, warmup_teacher_temp=cfg.loss.warmup_teacher_temp,
            teacher_temp=cfg.loss.teacher_temp, warmup_teacher_patch_temp=cfg.loss.warmup_teacher_patch_temp,
            teacher_patch_temp=cfg.loss.teacher_patch_temp,
            warmup_teacher_temp_epochs=cfg.loss.warmup_teacher_temp_epochs,
        )
        return cls(cfg, student, teacher, loss, optimizer, schedules, device)

    @property
    def epoch(self) -> int:
        return self.step // self.schedules.steps_per_epoch

    def state_dict(self) -> dict[str, Any]:
        """Checkpointable state (student unwrapped from DDP / compile)."""
        return {
            "student": unwrap(self.student).state_dict(),
            "teacher": self.teacher.state_dict(),
            "loss": self.loss.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.student).load_state_dict(state["student"])
        self.teacher.load_state_dict(state["teacher"])
        self.loss.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(_with_own_implementation(state["optimizer"], self.optimizer))
        self.step = int(state["step"])


def _with_own_implementation(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``saved`` optimiser state with this optimiser's kernel flags (fused / foreach) in its groups.

    ``Optimizer.load_state_dict`` takes every group setting from the saved groups, so a GPU
    checkpoint (fused) resumed on the CPU would run the fused kernel there, and a CPU one
    resumed on a GPU would lose it; the flags also decide where the ``step`` counters live
    (on the parameter's device for fused, on the host for foreach), which the load applies.
    """
    if len(saved["param_groups"]) != len(optimizer.param_groups):
        return saved  # torch's own load reports the mismatch
    groups = [{**g, **{k: own[k] for k in IMPLEMENTATION_KEYS if k in own}}
              for g, own in zip(saved["param_groups"], optimizer.param_groups)]
    return {**saved, "param_groups": groups}
