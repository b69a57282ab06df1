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
