"""Host augmentation kernel: the same maths as the batched tensor path, per sample, on real photos."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import augment
from attmask_ray.data.host_augment import HostAugmenter, augment_range, pack_params
from data_prep.sample_photos import photo_crop, source_photos

B = 48


def _rows(sides: list[int], seed: int = 0) -> torch.Tensor:
    """[B, K] uint8 rows of real photo crops laid out as the multi-crop decoder writes them (HWC, back to back)."""
    rng = np.random.default_rng(seed)
    src = list(source_photos().values())
    parts = [np.stack([photo_crop(src[(i + k) % len(src)], rng, (s, s)) for i in range(B)]).reshape(B, -1)
             for k, s in enumerate(sides)]
    return torch.from_numpy(np.concatenate(parts, 1))


def _views(rows: torch.Tensor, sides: list[int]) -> list[torch.Tensor]:
    out, off = [], 0
    for s in sides:
        out.append(rows[:, off:off + s * s * 3].view(B, s, s, 3))  # strided views, as in the loader
        off += s * s * 3
    return out


def _tensor_path(x: torch.Tensor, p: augment.Params, cfg: DataConfig, kind: int) -> torch.Tensor:
    probs = augment.view_probs(cfg)[min(kind, 2)]
    y = augment.apply(x.permute(0, 3, 1, 2).float().div(255.0), p, cfg, probs)
    return augment.normalise(y, torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1))


def _gens(seed: int) -> tuple[torch.Generator, torch.Generator]:
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 100)


@pytest.mark.parametrize("sides", [[64, 64, 24, 24], [28, 28, 12], [5, 5, 1]], ids=["photo", "fmnist", "tiny"])
def test_kernel_equals_tensor_path_for_each_view_kind(sides: list[int]) -> None:
    """Same params, same batch-wide jitter order -> the kernel reproduces flip/jitter/gray/blur/solarize/normalise."""
    cfg = DataConfig(global_crop_size=sides[0], local_crop_size=sides[-1])
    aug = HostAugmenter(cfg)
    crops = _views(_rows(sides), sides)
    mean, std = np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)
    for k, x in enumerate(crops):
        p, _ = aug.draw(k, B, *_gens(k))
        if k == 1:  # make every op fire on some samples of global 2 (solarize only exists there)
            p = dataclasses.replace(p, blur=torch.arange(B) % 2 == 0, solarize=torch.arange(B) % 3 == 0)
        order = np.tile(np.asarray(p.jitter_order), (B, 1))
        s, ks = x.shape[1], augment.blur_kernel_size(x.shape[1])
        out = torch.empty(B, 3, s, s)
        scratch = (np.empty((s, s, 3), np.float32), np.empty((s, s, 3), np.float32), np.empty((s + ks) * 3, np.float32))
        augment_range(x.numpy(), pack_params(p), order, ks, 0, B, mean, std, *scratch, out.numpy())
        ref = _tensor_path(x, p, cfg, k)
        assert (out - ref).abs().max().item() < 2e-5, (sides, k)
        assert bool(p.jitter.any() and p.gray.any() and p.flip.any())


def test_per_sample_jitter_order_and_threads() -> None:
    """HostAugmenter draws one jitter order per sample; 1 and 3 threads give identical bytes."""
    sides = [32, 32, 16, 16]
    cfg = DataConfig(global_crop_size=32, local_crop_size=16, local_crops_number=2)
    crops = _views(_rows(sides, seed=1), sides)
    outs = [HostAugmenter(cfg, threads=t)(crops, *_gens(7)) for t in (1, 3)]
    for a, b in zip(*outs):
        assert torch.equal(a, b)
    aug, (gen, order_gen) = HostAugmenter(cfg), _gens(7)
    orders = set()
    for k, x in enumerate(crops):
        p, order = aug.draw(k, B, gen, order_gen)
        orders |= {tuple(o) for o in order}
        for i in range(0, B, 5):  # each sample == the tensor path with that sample's own order
            pi = augment.Params(**{f.name: getattr(p, f.name)[i:i + 1] for f in dataclasses.fields(p)
                                   if f.name != "jitter_order"}, jitter_order=tuple(int(v) for v in order[i]))
            ref = _tensor_path(x[i:i + 1], pi, cfg, k)
            assert (outs[0][k][i:i + 1] - ref).abs().max().item() < 2e-5
    assert len(orders) > 10  # per sample, not one per batch (24 permutations exist)


def test_output_is_normalised_real_content() -> None:
    sides = [32, 32, 16]
    cfg = DataConfig(global_crop_size=32, local_crop_size=16, local_crops_number=1)
    views = HostAugmenter(cfg, threads=2)(_views(_rows(sides, seed=2), sides), *_gens(3))
    mean, std = torch.tensor(cfg.mean).view(1, 3, 1, 1), torch.tensor(cfg.std).view(1, 3, 1, 1)
    for v, s in zip(views, sides):
        assert v.shape == (B, 3, s, s) and v.dtype == torch.float32 and v.is_contiguous()
        pix = v * std + mean
        assert pix.min() >= -1e-5 and pix.max() <= 1 + 1e-5 and pix.std() > 0.1
