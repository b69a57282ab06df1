"""Shared fixtures: tiny configs that run fast on 2 CPU cores."""

from __future__ import annotations

import os

import pytest
import torch

from attmask_ray.config import ModelConfig

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(2)

TINY_MODEL = dict(arch="vit_tiny_patch16_224", patch_size=4, depth=3, embed_dim=48, num_heads=3,
                  out_dim=64, patch_out_dim=64, head_hidden_dim=32, head_bottleneck_dim=16)


@pytest.fixture
def tiny_model_cfg() -> ModelConfig:
    """A 3-block, 48-wide ViT with patch 4 (28x28 -> 7x7 grid) and a 64-way head."""
    return ModelConfig(**TINY_MODEL)
