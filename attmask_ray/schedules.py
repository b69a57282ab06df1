"""Per-iteration hyper-parameter schedules (SPEC §5), as pure functions of the step.

All schedules are indexed by the global iteration ``step = epoch * steps_per_epoch + i``
so a resumed run reproduces them exactly without storing arrays.

Conventions (compared with DINO/iBOT's ``cosine_scheduler`` numpy array):

* Warm-up is identical: ``np.linspace(warmup_start, base, warmup_steps)``, i.e. it
  starts at ``warmup_start`` at step 0 and reaches ``base`` at step ``warmup_steps - 1``.
* The cosine part runs from ``base`` at step ``warmup_steps`` to exactly ``final`` at
  step ``total_steps - 1`` (the reference divides by the number of cosine steps and
  therefore stops one step short of ``final``); steps beyond are clamped to ``final``.
* The teacher temperature is a per-EPOCH schedule exactly like the reference
  (``np.linspace(start, end, warmup_epochs)`` indexed by the epoch, then ``end``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "cosine_schedule",
    "teacher_temperature",
    "scaled_lr",
    "StepValues",
    "Schedules",
]


def cosine_schedule(
    step: int,
    base: float,
    final: float,
    total_steps: int,
    warmup_steps: int = 0,
    warmup_start: float = 0.0,
) -> float:
    """Linear warm-up ``warmup_start -> base`` then half-cosine ``base -> final``.

    Args:
        step: global iteration (clamped to ``[0, total_steps - 1]``).
        total_steps: length of the whole schedule, warm-up included.
        warmup_steps: number of warm-up iterations (may be 0).
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps={warmup_steps} outside [0, {total_steps}]")
    step = min(max(int(step), 0), total_steps - 1)
    if step < warmup_steps:
        if warmup_steps == 1:
            return float(base)
        return warmup_start + (base - warmup_start) * step / (warmup_steps - 1)
    cosine_steps = total_steps - warmup_steps
    if cosine_steps <= 1:
        return float(final)
    progress = (step - warmup_steps) / (cosine_steps - 1)  # 0 .. 1
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * progress))


def teacher_temperature(
    step: int,
    steps_per_epoch: int,
    start: float = 0.04,
    end: float = 0.07,
    warmup_epochs: int = 30,
) -> float:
    """Teacher temperature: linear ``start -> end`` over ``warmup_epochs`` epochs, then
    ``end``.  Per-epoch like the reference: the value at epoch ``e < warmup_epochs`` is
    ``start + (end - start) * e / (warmup_epochs - 1)`` (``end`` at epoch
    ``warmup_epochs - 1``); constant within an epoch."""
    epoch = max(int(step), 0) // steps_per_epoch
    if epoch >= warmup_epochs:
        return float(end)
    if warmup_epochs == 1:
        return float(end)
    return start + (end - start) * epoch / (warmup_epochs - 1)


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """Linear scaling rule: ``base_lr * batch_size / 256`` (global batch size)."""
    return base_lr * batch_size / 256.0


@dataclass(frozen=True)
class StepValues:
    """Hyper-parameter values for one iteration."""

    lr: float
    wd: float
    momentum: float
    teacher_temp: float
    teacher_patch_temp: float


@dataclass(frozen=True)
class Schedules:
    """All per-iteration schedules of a run.

    ``lr`` must already be scaled (see :func:`scaled_lr`).  Defaults follow the paper
    (AttMask/iBOT ViT-S/16, 100 epochs on 20% of ImageNet).
    """

    lr: float
    epochs: int
    steps_per_epoch: int
    min_lr: float = 1e-6
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    weight_decay_end: float = 0.4
    momentum_teacher: float = 0.99
    momentum_teacher_end: float = 1.0
    warmup_teacher_temp: float = 0.04
    teacher_temp: float = 0.07
    warmup_teacher_patch_temp: float = 0.04
    teacher_patch_temp: float = 0.07
    warmup_teacher_temp_epochs: int = 30

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        return cosine_schedule(
            step, self.lr, self.min_lr, self.total_steps,
            warmup_steps=min(self.warmup_epochs * self.steps_per_epoch, self.total_steps),
        )

    def wd_at(self, step: int) -> float:
        return cosine_schedule(step, self.weight_decay, self.weight_decay_end, self.total_steps)

    def momentum_at(self, step: int) -> float:
        return cosine_schedule(
            step, self.momentum_teacher, self.momentum_teacher_end, self.total_steps
        )

    def teacher_temp_at(self, step: int) -> float:
        return teacher_temperature(
            step, self.steps_per_epoch, self.warmup_teacher_temp, self.teacher_temp,
            self.warmup_teacher_temp_epochs,
        )

    def teacher_patch_temp_at(self, step: int) -> float:
        return teacher_temperature(
            step, self.steps_per_epoch, self.warmup_teacher_patch_temp,
            self.teacher_patch_temp, self.warmup_teacher_temp_epochs,
        )

    def at(self, step: int) -> StepValues:
        """All values for global iteration ``step``."""
        return StepValues(
            lr=self.lr_at(step),
            wd=self.wd_at(step),
            momentum=self.momentum_at(step),
            teacher_temp=self.teacher_temp_at(step),
            teacher_patch_temp=self.teacher_patch_temp_at(step),
        )

    __call__ = at
