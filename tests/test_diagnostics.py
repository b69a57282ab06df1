"""Collapse diagnostics on hand-made tensors with known answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attmask_ray.diagnostics import (ForegroundShare, embedding_std, foreground_attention_share, foreground_patches,
                                     kl_divergence, mean_pairwise_cosine, packed_index, relative_entropy,
                                     step_diagnostics)


def test_relative_entropy_uniform_is_one_and_one_hot_is_zero():
    k = 7
    assert relative_entropy(torch.full((3, k), 1 / k)).tolist() == pytest.approx([1.0] * 3)
    assert relative_entropy(F.one_hot(torch.tensor([0, 3]), k).float()).tolist() == [0.0, 0.0]
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0]])  # two of four: ln 2 / ln 4
    assert relative_entropy(p).item() == pytest.approx(0.5)


def test_kl_identical_is_zero_and_hand_computed_case():
    p = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert kl_divergence(p, p.clamp(min=1e-30).log()).abs().max().item() < 1e-6
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.25, 0.75])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q.log()).item() == pytest.approx(expected, rel=1e-6)
    # zero teacher mass contributes nothing even where the student is tiny
    assert kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, -1e4])).item() == pytest.approx(0.0)


def test_identical_features_give_zero_std_and_cosine_one():
    x = torch.randn(1, 16).repeat(10, 1)
    assert embedding_std(x).item() == pytest.approx(0.0, abs=1e-7)
    assert mean_pairwise_cosine(x).item() == pytest.approx(1.0)
    assert mean_pairwise_cosine(x * torch.arange(1, 11).view(-1, 1)).item() == pytest.approx(1.0)  # scale-free


def test_orthonormal_features_exact_values():
    d = 8
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    eye = torch.eye(d)
    assert embedding_std(eye).item() == pytest.approx(1 / math.sqrt(d))  # column: one 1, d-1 zeros
    assert mean_pairwise_cosine(q).item() == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_cosine(torch.cat([eye, eye])).item() == pytest.approx(d / (2 * d * (2 * d - 1)) * 2)
    # brute force agrees on random features
    f = torch.randn(50, 5, dtype=torch.float64)
    z = F.normalize(f, dim=1)
    sim = z @ z.T
    brute = (sim.sum() - sim.diagonal().sum()) / (50 * 49)
    assert mean_pairwise_cosine(f).item() == pytest.approx(brute.item(), rel=1e-10)
    assert embedding_std(f[:1]).item() == 0.0 and mean_pairwise_cosine(f[:1]).item() == 0.0


def _image_with_square():
    """8x8, patch 4 -> 2x2 grid; bright 5x5 block at the top-left: patch 0 is all foreground
    (16/16), patches 1 and 2 have 4/16, patch 3 has 1/16."""
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    raw = torch.zeros(1, 3, 8, 8)
    raw[:, :, :5, :5] = 0.9
    return (raw - 0.5) / 0.25, mean, std


def test_foreground_patches_and_attention_share():
    images, mean, std = _image_with_square()
    fg = foreground_patches(images, mean, std, patch=4, threshold=0.5)
    assert fg.tolist() == [[True, False, False, False]]
    # more than half: a patch with exactly 8/16 bright pixels is background
    raw = torch.zeros(1, 3, 4, 4)
    raw[:, :, :2] = 1.0
    assert foreground_patches(raw, (0.0,) * 3, (1.0,) * 3, 4, 0.5).tolist() == [[False]]
    attn = torch.tensor([[0.3, 0.1, 0.1, 0.1]])  # CLS attention without the CLS key: sums to 0.6
    assert foreground_attention_share(attn, fg).item() == pytest.approx(0.5)
    acc = ForegroundShare(mean, std, 4, 0.5)
    acc(images, attn)
    acc(images, torch.tensor([[0.0, 0.2, 0.2, 0.0]]))
    acc(images, None)  # skipped
    assert acc.read() == pytest.approx({"fg_attention_share": 0.25, "fg_patch_frac": 0.25})


def test_packed_index_matches_nonzero_order():
    masks = torch.tensor([[False, True, True], [True, False, False]])
    assert packed_index(masks, 3).tolist() == masks.reshape(-1).nonzero().view(-1).tolist()


def test_step_diagnostics_pairs_views_and_packed_equals_dense():
    torch.manual_seed(0)
    b, n, k, kp, d = 3, 4, 5, 6, 8
    t_cls, s_cls = torch.randn(2 * b, k), torch.randn(4 * b, k)  # 2 globals + 2 local views
    center = torch.randn(1, k) * 0.1
    t_patch, s_patch = torch.randn(2 * b, n, kp), torch.randn(2 * b, n, kp)
    masks = torch.rand(2 * b, n) < 0.5
    pc = torch.randn(1, 1, kp) * 0.1
    common = dict(center=center, teacher_temp=0.04, student_temp=0.1, t_embed=torch.randn(2 * b, d))
    dense = step_diagnostics(t_cls, s_cls, t_patch=t_patch, s_patch=s_patch, masks=masks, patch_center=pc,
                             patch_temp=0.05, **common)
    packed = step_diagnostics(t_cls, s_cls, t_patch=t_patch, s_patch=s_patch[masks], masks=masks, patch_center=pc,
                              patch_temp=0.05, **common)
    for key in dense:
        torch.testing.assert_close(dense[key], packed[key], msg=key)
    t = F.softmax((t_cls - center) / 0.04, dim=-1)
    log_s = F.log_softmax(s_cls[: 2 * b] / 0.1, dim=-1)
    swapped = torch.cat([log_s[b:], log_s[:b]])  # teacher view 1 <-> student view 2
    expected = (t * (t.log() - swapped)).sum(-1).mean()
    torch.testing.assert_close(dense["teacher_student_kl"], expected)
    tp = F.softmax((t_patch - pc) / 0.05, dim=-1)[masks]
    ent = -(tp * tp.log()).sum(-1).mean() / math.log(kp)
    torch.testing.assert_close(dense["teacher_patch_entropy"], ent)
    assert dense["embed_std_ratio"].item() == pytest.approx(dense["teacher_embed_std"].item() * math.sqrt(d))
    none = step_diagnostics(t_cls, s_cls, t_patch=t_patch, s_patch=s_patch[:0, 0], masks=torch.zeros_like(masks),
                            patch_center=pc, patch_temp=0.05, **common)
    assert none["teacher_patch_entropy"].item() == 0.0 and none["teacher_student_patch_kl"].item() == 0.0
    dino = step_diagnostics(t_cls, s_cls, **common)
    assert "teacher_patch_entropy" not in dino and set(dino) == {"teacher_entropy", "teacher_student_kl",
                                                                 "teacher_embed_std", "embed_std_ratio"}
