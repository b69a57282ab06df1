"""Masked robustness blacks out exactly the top-r attended patches (hand-made attention)."""

from __future__ import annotations

import torch

from attmask_ray.eval.masked import black_out, masked_robustness, top_attended_mask

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_top_r_patches_from_hand_made_attention():
    attn = torch.zeros(1, 16)  # 4x4 grid
    attn[0, [5, 10, 3, 15, 0]] = torch.tensor([0.5, 0.4, 0.3, 0.2, 0.1])
    assert top_attended_mask(attn, 0.0).sum() == 0
    assert top_attended_mask(attn, 0.1).nonzero()[:, 1].tolist() == [5]  # floor(1.6) = 1
    assert top_attended_mask(attn, 0.2).nonzero()[:, 1].tolist() == [3, 5, 10]  # floor(3.2) = 3
    assert top_attended_mask(attn, 0.3).nonzero()[:, 1].tolist() == [3, 5, 10, 15]  # floor(4.8) = 4


def test_black_out_sets_exactly_the_masked_patches_to_black_pixels():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 8, 8)  # patch 2 -> 4x4 grid
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, [0, 5]] = True
    mask[1, 15] = True
    out = black_out(images, mask, 2, MEAN, STD)
    pixels = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)  # un-normalise
    black = torch.zeros(2, 8, 8, dtype=torch.bool)
    black[0, 0:2, 0:2] = black[0, 2:4, 2:4] = black[1, 6:8, 6:8] = True
    assert torch.allclose(pixels.permute(1, 0, 2, 3)[:, black], torch.zeros(3, int(black.sum())), atol=1e-6)
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~black], images.permute(1, 0, 2, 3)[:, ~black])


def test_masked_robustness_reports_drop():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (60,), generator=g)
    centres = torch.randn(3, 8, generator=g) * 4
    train = centres[labels] + torch.randn(60, 8, generator=g)
    val = {0.0: train.clone(), 0.5: torch.randn(60, 8, generator=g)}
    out = masked_robustness(val, labels, train, labels, k=5)
    assert out["masked_r0_drop"] == 0.0
    assert out["masked_r50_drop"] == out["masked_r0_top1"] - out["masked_r50_top1"] > 20
