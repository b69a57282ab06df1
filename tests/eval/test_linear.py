"""Linear probe: near-perfect on a linearly separable toy set; DINO's init; augmentation shapes."""

from __future__ import annotations

import pytest
import torch

from attmask_ray.data.device_crops import random_resized_crop_flip
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.linear import make_linear, train_linear


def _separable(n, g, w):
    x = torch.randn(n, 10, generator=g)
    return x, (x @ w.T).argmax(1)


def test_linear_probe_fits_separable_toy_set():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 10, generator=g)
    xt, yt = _separable(600, g, w)
    xv, yv = _separable(200, g, w)
    out = train_linear(xt, yt, xv, yv, num_classes=3, epochs=10, lr=2.0, batch_size=128)
    assert out["linear_top1"] >= 95.0
    assert 1 <= out["linear_best_epoch"] <= 10


def test_init_and_errors():
    layer = make_linear(1000, 50)
    assert abs(layer.weight.std().item() - 0.01) < 0.001 and layer.bias.abs().sum() == 0
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(EvalError, match="validation split is empty"):
        train_linear(x, y, x[:0], y[:0], 2, epochs=1)
    with pytest.raises(EvalError, match="num_classes=2"):
        train_linear(x, y, x, y + 2, 2, epochs=1)


def test_random_resized_crop_flip_keeps_shape_and_is_seeded():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    a = random_resized_crop_flip(x, generator=torch.Generator().manual_seed(0))
    b = random_resized_crop_flip(x, generator=torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
