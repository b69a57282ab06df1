"""ViT backbone with mask token + DINO/iBOT head, assembled into a student or teacher."""

from __future__ import annotations

from attmask_ray.config import ModelConfig
from attmask_ray.models.head import IBOTHead
from attmask_ray.models.ssl import SSLModel
from attmask_ray.models.vit import MaskedViT, build_backbone


def build_model(cfg: ModelConfig, img_size: int, student: bool) -> SSLModel:
    """Student (drop path on) or teacher (drop path 0) network for crops of ``img_size``."""
    backbone = build_backbone(cfg, img_size=img_size, student=student)
    head = IBOTHead(backbone.embed_dim, cfg.out_dim, cfg.patch_out_dim, cfg.head_hidden_dim,
                    cfg.head_bottleneck_dim, cfg.shared_head, cfg.norm_last_layer)
    return SSLModel(backbone, head)


__all__ = ["IBOTHead", "MaskedViT", "SSLModel", "build_backbone", "build_model"]
