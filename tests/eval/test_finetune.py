"""The finetune task (Table 6): the recipe's pieces and a real fine-tuning run on toy data."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch

from attmask_ray.checkpoint import load_checkpoint
from attmask_ray.config import ConfigError, EvalConfig
from attmask_ray.eval import finetune as ft
from attmask_ray.eval.in_memory import AugmentedTensorBatches, tensor_loader
from attmask_ray.eval.runner import run_evaluations



def test_lr_schedule_warms_up_from_1e6_then_cosine_to_the_floor():
    assert ft.lr_at(0, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-6)
    assert ft.lr_at(5, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-6 + (1e-3 - 1e-6) / 2)
    assert ft.lr_at(10, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert ft.lr_at(55, 100, 10, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert ft.lr_at(100, 100, 10, 1e-3, 1e-5) == pytest.approx(1e-5)
    assert ft.lr_at(0, 100, 0, 1e-3, 0.0) == pytest.approx(1e-3)  # no warm-up


def test_layer_decay_and_weight_decay_groups(tiny_checkpoint):
    backbone = load_checkpoint(tiny_checkpoint).backbone()
    model = ft.Classifier(backbone, 3)
    depth = backbone.depth  # 3
    groups = ft.param_groups(model, weight_decay=0.05, layer_decay=0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for g in groups:
        for p in g["params"]:
            seen[names[id(p)]] = (g["lr_scale"], g["weight_decay"])
    assert "backbone.mask_token" not in seen  # unused without masks
    assert set(seen) == {n for n in names.values() if n != "backbone.mask_token"}
    assert seen["head.weight"] == (1.0, 0.05) and seen["head.bias"] == (1.0, 0.0)
    assert seen["backbone.vit.norm.weight"] == (1.0, 0.0)
    assert seen[f"backbone.vit.blocks.{depth - 1}.mlp.fc1.weight"] == (0.5, 0.05)  # last block: one step down
    assert seen["backbone.vit.blocks.0.attn.qkv.weight"] == (0.5 ** depth, 0.05)
    assert seen["backbone.vit.blocks.0.norm1.bias"] == (0.5 ** depth, 0.0)
    assert seen["backbone.vit.patch_embed.proj.weight"] == (0.5 ** (depth + 1), 0.05)
    assert seen["backbone.vit.cls_token"] == seen["backbone.vit.pos_embed"] == (0.5 ** (depth + 1), 0.0)


def colour_split(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c = colour channel c lit: survives the crops and flips of the fine-tuning views (the
    quadrant toy classes do not)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(n_per_class)
    images = 0.3 * torch.rand(len(labels), 3, 28, 28, generator=g)
    images[torch.arange(len(labels)), labels] += 0.7
    return (images - 0.5) / 0.25, labels


def _loader():
    return functools.partial(tensor_loader, datasets={"train": colour_split(12, 0), "val": colour_split(5, 1)})


def test_finetune_learns_and_moves_the_backbone(tiny_checkpoint, eval_cfg):
    e = replace(eval_cfg, finetune_epochs=8, finetune_batch_size=8, finetune_warmup_epochs=1, finetune_lr=0.2,
                finetune_mixup=0.0, finetune_cutmix=0.0, finetune_drop_path=0.0)
    before = {k: v.clone() for k, v in load_checkpoint(tiny_checkpoint).backbone().state_dict().items()}
    seen = {}
    real = ft.finetune

    def spy(backbone, *args, **kwargs):
        seen["start"] = {k: v.clone() for k, v in backbone.state_dict().items()}
        out = real(backbone, *args, **kwargs)
        seen["end"] = backbone.state_dict()
        return out

    ft.finetune = spy
    try:
        out = run_evaluations(tiny_checkpoint, "finetune", local=True, loader_factory=_loader(), eval_cfg=e)
    finally:
        ft.finetune = real
    assert set(out) == {"finetune_top1", "finetune_top5", "finetune_last_top1", "finetune_best_epoch"}
    assert out["finetune_top1"] > 60 and 1 <= out["finetune_best_epoch"] <= 8  # chance is 33 %
    assert all(torch.equal(seen["start"][k], before[k]) for k in before)  # starts from the checkpoint's teacher
    assert not torch.equal(seen["end"]["vit.blocks.0.attn.qkv.weight"], before["vit.blocks.0.attn.qkv.weight"])


def test_random_init_baseline_and_mixup_path(tiny_checkpoint, eval_cfg, monkeypatch, tmp_path):
    payload = dict(load_checkpoint(tiny_checkpoint).payload)  # a "trained" teacher: shifted weights
    key = "vit.blocks.0.mlp.fc1.weight"
    payload["state"] = {**payload["state"], "teacher": dict(payload["state"]["teacher"])}
    payload["state"]["teacher"][f"backbone.{key}"] = payload["state"]["teacher"][f"backbone.{key}"] + 1.0
    torch.save(payload, tmp_path / "state.pt")
    starts = []
    real = ft.finetune
    monkeypatch.setattr(ft, "finetune", lambda backbone, *a, **k: (starts.append(backbone.state_dict()[key].clone()),
                                                                   real(backbone, *a, **k))[1])
    e = replace(eval_cfg, finetune_epochs=1, finetune_batch_size=7, finetune_warmup_epochs=0)  # odd batches: mixup pairs
    for init in ("checkpoint", "random"):
        out = run_evaluations(tmp_path, "finetune", local=True, loader_factory=_loader(),
                              eval_cfg=replace(e, finetune_init=init))
        assert 0 <= out["finetune_top1"] <= 100
    trained = load_checkpoint(tmp_path).backbone().state_dict()[key]
    assert torch.equal(starts[0], trained)
    assert not torch.allclose(starts[1], trained, atol=0.5)  # the same ViT, freshly initialised


@pytest.mark.parametrize("key,value,message", [
    ("finetune_init", "pretrained", "finetune_init must be 'checkpoint' or 'random'"),
    ("finetune_layer_decay", 0.0, r"finetune_layer_decay must be in \(0, 1\]"),
    ("finetune_warmup_epochs", 400, "finetune_warmup_epochs in"),
    ("finetune_label_smoothing", 1.0, "finetune_label_smoothing"),
    ("finetune_crop_scale", (0.0, 1.0), r"finetune_crop_scale must be \(low, high\)"),
    ("finetune_crop_scale", (0.9, 0.5), r"finetune_crop_scale must be \(low, high\)"),
])
def test_bad_finetune_config_is_a_one_line_error(key, value, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig(**{key: value})


def test_crop_scale_reaches_the_train_views(tiny_checkpoint, eval_cfg):
    calls = []
    base = _loader()

    def spy(path, data_cfg, batch_size, **kw):
        calls.append(kw)
        return base(path, data_cfg, batch_size, **kw)

    e = replace(eval_cfg, finetune_epochs=1, finetune_warmup_epochs=0, finetune_mixup=0.0, finetune_cutmix=0.0,
                finetune_crop_scale=(1.0, 1.0))
    run_evaluations(tiny_checkpoint, "finetune", local=True, loader_factory=spy, eval_cfg=e)
    augmented = [kw for kw in calls if kw.get("augment")]
    assert augmented and all(kw["crop_scale"] == (1.0, 1.0) for kw in augmented)
    # scale (1, 1) with the square images: every view is the whole image, at most flipped
    x, y = colour_split(6, 0)
    views = AugmentedTensorBatches(x, y, batch_size=len(y), scale=(1.0, 1.0))
    (v, _labels), = list(views)
    for img in v:
        assert any(torch.allclose(img, c, atol=1e-4) or torch.allclose(img, c.flip(-1), atol=1e-4) for c in x.float())
