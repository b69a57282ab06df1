"""Shared pieces of the GPU tests (tests/gpu): the skip marker, a tiny config, crops, snapshots."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from attmask_ray.config import ExperimentConfig, from_dict
from attmask_ray.optim import unwrap
from attmask_ray.train.state import TrainingState
from tests.conftest import TINY_MODEL

CUDA = torch.cuda.is_available()
# every module under tests/gpu sets ``pytestmark = GPU``: selected by ``pytest -m gpu``, skipped without CUDA
GPU = [pytest.mark.gpu,
       pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: torch.cuda.is_available() is False on this machine")]


def tiny_cfg(precision: str = "fp32", strategy: str = "block", **optim) -> ExperimentConfig:
    """3-block ViT on 28 px globals + 2 x 12 px locals; no drop path (its draws differ per device)."""
    return from_dict(dict(
        model=dict(TINY_MODEL, drop_path_rate=0.0),
        data=dict(global_crop_size=28, local_crop_size=12, local_crops_number=2, eval_resize=32),
        optim=dict(dict(epochs=100, batch_size=8, warmup_epochs=0, lr=0.05, freeze_last_layer=0,
                        momentum_teacher=0.996, precision=precision), **optim),
        loss=dict(warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_patch_temp=0.04, teacher_patch_temp=0.04),
        mask=dict(strategy=strategy, pred_ratio=(0.1, 0.5), masking_prob=0.5),
    ))


def crops(seed: int = 0, device: str | torch.device = "cpu", b: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, s, s, generator=g).to(device) for s in (28, 28, 12, 12)]


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached float64 CPU copies of the parameters, by name (wrappers stripped)."""
    return {n: p.detach().double().cpu() for n, p in unwrap(module).named_parameters()}


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (0 when both are 0)."""
    den = torch.linalg.vector_norm(b).item()
    num = torch.linalg.vector_norm(a - b).item()
    return num / den if den > 0 else num


def snapshot(state: TrainingState) -> dict:
    return copy.deepcopy(state.state_dict())


@contextlib.contextmanager
def ieee_fp32():
    """True float32 matrix products on CUDA (no TF32 in matmul or cuDNN convolutions)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
