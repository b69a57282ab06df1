"""Batched augmentations: per-sample rates match the configured probabilities; ops are exact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import augment
from data_prep.sample_photos import photo_crop, source_photos

N = 20_000


def _gens(seed: int = 0) -> tuple[torch.Generator, torch.Generator]:
    g, o = torch.Generator(), torch.Generator()
    g.manual_seed(seed)
    o.manual_seed(seed + 1)
    return g, o


@pytest.mark.parametrize("kind", [0, 1, 2])  # global 1, global 2, local
def test_parameter_rates_match_probabilities(kind: int) -> None:
    cfg = DataConfig()
    probs = augment.view_probs(cfg)[kind]
    p = augment.sample_params(N, cfg, probs, *_gens(kind)[:1], "cpu", _gens(kind)[1])
    tol = 4 * np.sqrt(0.25 / N)  # 4 sigma of a Bernoulli mean
    assert abs(p.flip.float().mean().item() - 0.5) < tol
    assert abs(p.jitter.float().mean().item() - cfg.color_jitter_prob) < tol
    assert abs(p.gray.float().mean().item() - cfg.grayscale_prob) < tol
    assert abs(p.blur.float().mean().item() - cfg.blur_prob[kind]) < tol
    assert abs(p.solarize.float().mean().item() - (cfg.solarize_prob if kind == 1 else 0.0)) < tol
    assert 0.1 <= p.sigma.min().item() and p.sigma.max().item() <= 2.0
    assert 0.6 <= p.brightness.min().item() and p.brightness.max().item() <= 1.4
    assert -0.1 <= p.hue.min().item() and p.hue.max().item() <= 0.1


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """[<=2000, 3, 24, 24] real photo crops in [0, 1], left-right asymmetric, some pixels bright."""
    rng = np.random.default_rng(0)
    src = list(source_photos().values())
    imgs = np.stack([photo_crop(src[i % len(src)], rng, (24, 24)) for i in range(2000)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    keep = ((x - x.flip(-1)).abs().amax(dim=(1, 2, 3)) > 0.05) & (x.amax(dim=(1, 2, 3)) > 0.6)
    return x[keep]


def test_observed_effect_rates_match_probabilities(photos: torch.Tensor) -> None:
    """Detect each op from the OUTPUT pixels and compare its frequency with the probability."""
    n = photos.shape[0]
    tol = 4 * np.sqrt(0.25 / n)
    off = dict(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=(0.0, 0.0, 0.0), solarize_prob=0.0)
    # grayscale only: output channels equal <=> grayscale applied
    cfg = DataConfig(**{**off, "grayscale_prob": 0.2})
    probs = augment.view_probs(cfg)[0]
    p = augment.sample_params(n, cfg, probs, *_gens()[:1], "cpu", _gens()[1])
    y = augment.apply(photos, p, cfg, probs)
    gray = (y[:, 0] - y[:, 1]).abs().amax(dim=(1, 2)) < 1e-6
    assert torch.equal(gray, p.gray) and abs(gray.float().mean().item() - 0.2) < tol
    flipped = (y - photos.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-6
    unflipped = (y - photos).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert abs(flipped[~p.gray].float().mean().item() - 0.5) < 2 * tol
    assert bool((flipped | unflipped)[~p.gray].all())
    # solarize only (global 2): every pixel >= 0.5 inverted <=> solarize applied
    cfg = DataConfig(**{**off, "solarize_prob": 0.2})
    probs = augment.view_probs(cfg)[1]
    p = augment.sample_params(n, cfg, probs, *_gens(3)[:1], "cpu", _gens(3)[1])
    p = dataclasses.replace(p, flip=torch.zeros_like(p.flip))
    y = augment.apply(photos, p, cfg, probs)
    solarized = ((y - photos).abs().amax(dim=(1, 2, 3)) > 1e-6)
    assert torch.equal(solarized, p.solarize) and abs(solarized.float().mean().item() - 0.2) < tol
    assert torch.allclose(y[p.solarize], torch.where(photos[p.solarize] >= 0.5, 1 - photos[p.solarize], photos[p.solarize]))
    # colour jitter only: changed <=> jitter applied (p 0.8); blur only on locals (p 0.5)
    for kw, kind, attr, rate in [({"color_jitter_prob": 0.8}, 0, "jitter", 0.8), ({"blur_prob": (1.0, 0.1, 0.5)}, 2, "blur", 0.5)]:
        cfg = DataConfig(**{**off, **kw})
        probs = augment.view_probs(cfg)[kind]
        p = augment.sample_params(n, cfg, probs, *_gens(5)[:1], "cpu", _gens(5)[1])
        p = dataclasses.replace(p, flip=torch.zeros_like(p.flip))
        y = augment.apply(photos, p, cfg, probs)
        changed = (y - photos).abs().amax(dim=(1, 2, 3)) > 1e-4
        visible = p.sigma > 0.4 if attr == "blur" else torch.ones_like(changed)  # sigma ~0.1 blurs nothing
        assert torch.equal(changed[visible], getattr(p, attr)[visible]), attr
        assert abs(changed[visible].float().mean().item() - rate) < 1.2 * tol, attr
        assert y.min() >= -1e-6 and y.max() <= 1 + 1e-6


def test_blur_kernel_scales_with_crop_and_smooths() -> None:
    assert [augment.blur_kernel_size(s) for s in (224, 96, 28, 12)] == [23, 9, 3, 3]
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0)).expand(4, 3, 96, 96).contiguous()
    y = augment.gaussian_blur(x, torch.tensor([0.1, 0.5, 1.0, 2.0]))
    assert torch.allclose(y[0], x[0], atol=1e-4)  # sigma 0.1: (almost) identity
    tv = [(y[i, :, 1:] - y[i, :, :-1]).abs().mean().item() for i in range(4)]
    assert tv[1] > tv[2] > tv[3]  # more sigma, smoother
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.02)


def test_hue_shift_zero_is_identity_and_full_turn_wraps() -> None:
    x = torch.rand(3, 3, 8, 8)
    assert torch.allclose(augment._hue_shift(x, torch.zeros(3)), x, atol=1e-5)
    assert torch.allclose(augment._hue_shift(x, torch.full((3,), 1.0)), x, atol=1e-5)
    y = augment._hue_shift(x, torch.full((3,), 0.1))
    assert torch.allclose(y.amax(1), x.amax(1), atol=1e-5)  # hue rotation keeps the HSV value


def test_hue_shift_matches_torchvision() -> None:
    from torchvision.transforms.v2 import functional as TF

    x = torch.rand(4, 3, 16, 16)
    for h in (-0.1, 0.05, 0.3):
        assert torch.allclose(augment._hue_shift(x, torch.full((4,), h)), TF.adjust_hue(x, h), atol=1e-5)


def test_hue_shift_matches_torchvision_on_ties_and_greys() -> None:
    """Quantised pixels: many channel ties (max picked r, then g, then b) and grey pixels."""
    from torchvision.transforms.v2 import functional as TF

    x = torch.randint(0, 4, (16, 3, 12, 12), generator=torch.Generator().manual_seed(0)).float() / 3
    assert ((x[:, 0] == x[:, 1]) & (x[:, 1] == x[:, 2])).any() and ((x[:, 1] == x[:, 2]) & (x[:, 0] < x[:, 1])).any()
    for h in (-0.1, 0.05, 0.5):
        assert torch.allclose(augment._hue_shift(x, torch.full((16,), h)), TF.adjust_hue(x, h), atol=1e-5)


@pytest.mark.parametrize("sigma", [(0.1, 2.0), (0.05, 0.25)])
def test_blur_sigma_is_drawn_from_the_configured_range(sigma) -> None:
    cfg = DataConfig(blur_sigma=sigma)
    g = torch.Generator().manual_seed(0)
    p = augment.sample_params(20_000, cfg, augment.view_probs(cfg)[0], g, "cpu", torch.Generator().manual_seed(1))
    assert p.sigma.min() >= sigma[0] and p.sigma.max() <= sigma[1]
    assert abs(float(p.sigma.mean()) - sum(sigma) / 2) < 0.02 * (sigma[1] - sigma[0]) + 1e-3


@pytest.mark.parametrize("flip_prob", [0.0, 0.3])
def test_flip_rate_follows_flip_prob(photos: torch.Tensor, flip_prob: float) -> None:
    """data.flip_prob sets how often a crop is mirrored (0: never, e.g. for digits), read from the output."""
    n = photos.shape[0]
    off = dict(color_jitter_prob=0.0, grayscale_prob=0.0, blur_prob=(0.0, 0.0, 0.0), solarize_prob=0.0)
    cfg = DataConfig(**off, flip_prob=flip_prob)
    probs = augment.view_probs(cfg)[0]
    p = augment.sample_params(n, cfg, probs, *_gens(7)[:1], "cpu", _gens(7)[1])
    y = augment.apply(photos, p, cfg, probs)
    flipped = (y - photos.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert torch.equal(flipped, p.flip)
    assert abs(flipped.float().mean().item() - flip_prob) < 4 * np.sqrt(0.25 / n)


def test_flip_prob_out_of_range_is_refused() -> None:
    from attmask_ray.config import ConfigError

    with pytest.raises(ConfigError, match="data.flip_prob must be in"):
        DataConfig(flip_prob=1.5)
