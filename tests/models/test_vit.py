from __future__ import annotations

import pytest
import timm
import torch

from attmask_ray.models import build_model
from attmask_ray.models.vit import MaskedViT


def _full_attention_rows(backbone: MaskedViT, x: torch.Tensor) -> list[torch.Tensor]:
    """Materialise every block's softmax attention via timm's unfused path: [B, H, N, N] each."""
    rows: list[torch.Tensor] = []
    hooks = []
    for blk in backbone.vit.blocks:
        blk.attn.fused_attn = False
        hooks.append(blk.attn.attn_drop.register_forward_hook(lambda _m, inp, _o: rows.append(inp[0].detach())))
    try:
        backbone(x)
    finally:
        for h in hooks:
            h.remove()
        for blk in backbone.vit.blocks:
            blk.attn.fused_attn = True
    return rows


@pytest.mark.parametrize("size", [28, 12])
def test_cheap_cls_attention_equals_full_matrix_for_every_layer(tiny_model_cfg, size):
    torch.manual_seed(0)
    model = build_model(tiny_model_cfg, img_size=28, student=False).eval()
    x = torch.randn(4, 3, size, size)
    full = _full_attention_rows(model.backbone, x)
    assert len(full) == model.backbone.depth
    for layer in range(1, model.backbone.depth + 1):
        _, cheap = model.backbone(x, attn_layer=layer)
        reference = full[layer - 1][:, :, 0, 1:].mean(dim=1)  # [CLS] row, drop [CLS] key, head mean
        assert cheap.shape == (4, (size // 4) ** 2)
        torch.testing.assert_close(cheap, reference, atol=1e-5, rtol=0)
        assert not cheap.requires_grad


def test_cheap_path_keeps_fused_attention_on(tiny_model_cfg):
    model = build_model(tiny_model_cfg, img_size=28, student=False)
    model.backbone(torch.randn(2, 3, 28, 28), attn_layer=2)
    assert all(blk.attn.fused_attn for blk in model.backbone.vit.blocks)
    assert all(not blk.attn.qkv._forward_hooks for blk in model.backbone.vit.blocks)


def test_mask_token_replaces_exactly_the_masked_patch_embeddings(tiny_model_cfg):
    torch.manual_seed(0)
    backbone = build_model(tiny_model_cfg, img_size=28, student=True).backbone
    with torch.no_grad():
        backbone.mask_token.normal_()
    x = torch.randn(2, 3, 28, 28)
    mask = torch.zeros(2, 49, dtype=torch.bool)
    mask[0, [0, 5, 48]] = True
    mask[1, 10:20] = True
    clean = backbone.embed(x)
    masked = backbone.embed(x, mask)
    pos = backbone.vit.pos_embed[0]  # [1 + n, D]; pos embed includes the [CLS] slot
    # masked positions hold exactly mask_token + pos; everything else (and [CLS]) unchanged
    expected_masked = backbone.mask_token[0, 0] + pos[1:]
    for b in range(2):
        torch.testing.assert_close(masked[b, 0], clean[b, 0])
        keep = ~mask[b]
        torch.testing.assert_close(masked[b, 1:][keep], clean[b, 1:][keep])
        torch.testing.assert_close(masked[b, 1:][mask[b]], expected_masked[mask[b]])


def test_mask_shape_must_match_grid(tiny_model_cfg):
    backbone = build_model(tiny_model_cfg, img_size=28, student=True).backbone
    with pytest.raises(ValueError, match="7x7 patch grid"):
        backbone(torch.randn(2, 3, 28, 28), mask=torch.zeros(2, 36, dtype=torch.bool))


def test_multicrop_sizes_interpolate_position_embeddings(tiny_model_cfg):
    model = build_model(tiny_model_cfg, img_size=28, student=True)
    for size, n in ((28, 49), (12, 9), (16, 16)):
        tokens, _ = model.backbone(torch.randn(2, 3, size, size))
        assert tokens.shape == (2, 1 + n, 48)


def test_backbone_state_dict_loads_into_plain_timm(tiny_model_cfg):
    backbone = build_model(tiny_model_cfg, img_size=28, student=False).backbone.eval()
    plain = timm.create_model(tiny_model_cfg.arch, pretrained=False, num_classes=0, img_size=28, patch_size=4,
                              depth=3, embed_dim=48, num_heads=3, dynamic_img_size=True).eval()
    plain.load_state_dict(backbone.vit.state_dict(), strict=True)
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(plain.forward_features(x), backbone(x)[0])


def test_student_has_drop_path_teacher_does_not(tiny_model_cfg):
    student = build_model(tiny_model_cfg, img_size=28, student=True).backbone
    teacher = build_model(tiny_model_cfg, img_size=28, student=False).backbone
    assert student.vit.blocks[-1].drop_path1.drop_prob == pytest.approx(0.1)
    assert student.vit.blocks[0].drop_path1.__class__.__name__ == "Identity"
    assert all(b.drop_path1.__class__.__name__ == "Identity" for b in teacher.vit.blocks)


def _reference_rule(pos_embed: torch.Tensor, w0: int, h0: int) -> torch.Tensor:
    """DINO/iBOT/AttMask ``interpolate_pos_encoding`` written out from its definition:
    [1, 1 + N, D] stored (square grid) -> [1, 1 + w0*h0, D]."""
    import math

    import torch.nn.functional as F

    n = pos_embed.shape[1] - 1
    dim = pos_embed.shape[-1]
    side = int(math.sqrt(n))
    patch = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((w0 + 0.1) / math.sqrt(n), (h0 + 0.1) / math.sqrt(n)),
                          mode="bicubic")
    assert patch.shape[-2:] == (w0, h0)
    return torch.cat([pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)


def test_local_crop_position_embeddings_follow_the_reference_rule():
    from attmask_ray.config import ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(arch="vit_small_patch16_224", out_dim=64, patch_out_dim=64)
    backbone = build_model(cfg, img_size=224, student=True).backbone
    with torch.no_grad():
        backbone.vit.pos_embed.normal_(std=0.02)  # timm's trunc-normal init, untruncated
    stored = backbone.vit.pos_embed.detach()
    ours = torch.cat([stored[:, :1], backbone.pos_embed_for((6, 6))], dim=1)
    expected = _reference_rule(stored, 6, 6)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    # the 224 px grid is the stored one: unchanged
    assert torch.equal(backbone.pos_embed_for((14, 14)), stored[:, 1:])
    # timm's antialiased rule differs visibly on 6x6 (what the option keeps)
    from timm.layers import resample_abs_pos_embed

    timm_6 = resample_abs_pos_embed(stored, new_size=(6, 6), old_size=(14, 14), num_prefix_tokens=1)
    assert (timm_6 - expected).norm() / expected.norm() > 0.1


def test_student_forward_on_local_crops_uses_the_reference_positions(tiny_model_cfg):
    import dataclasses

    torch.manual_seed(0)
    backbone = build_model(tiny_model_cfg, img_size=28, student=False).backbone.eval()
    with torch.no_grad():
        backbone.vit.pos_embed.normal_()
    x = torch.randn(2, 3, 12, 12)  # 3x3 grid of a 7x7-stored backbone
    tokens = backbone.embed(x)
    patches = backbone.vit.patch_embed(x).reshape(2, 9, -1)
    expected = _reference_rule(backbone.vit.pos_embed.detach(), 3, 3)
    torch.testing.assert_close(tokens[:, 1:], patches + expected[:, 1:], atol=1e-6, rtol=0)
    torch.testing.assert_close(tokens[:, 0], (backbone.vit.cls_token + expected[:, :1])[0].expand(2, -1))
    # model.pos_interp="timm" reproduces timm's own dynamic_img_size forward
    timm_cfg = dataclasses.replace(tiny_model_cfg, pos_interp="timm")
    other = build_model(timm_cfg, img_size=28, student=False).backbone.eval()
    other.load_state_dict(backbone.state_dict())
    torch.testing.assert_close(other.vit.forward_features(x), other(x)[0])
    assert not torch.allclose(other(x)[0], backbone(x)[0], atol=1e-3)
