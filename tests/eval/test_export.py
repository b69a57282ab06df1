"""The exported teacher backbone is a plain timm state dict reproducing our features."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from attmask_ray.export import export_backbone, main
from attmask_ray.checkpoint import load_checkpoint


def test_export_loads_strictly_into_timm_and_reproduces_features(tiny_checkpoint, tmp_path, capsys):
    assert main([str(tiny_checkpoint), str(tmp_path / "vit.pth")]) == 0
    assert "strict=True" in capsys.readouterr().out
    spec = json.loads((tmp_path / "vit.json").read_text())
    cfg = load_checkpoint(tiny_checkpoint).config
    pre = spec["preprocessing"]  # what a user of the export must reproduce
    assert (pre["mean"], pre["std"]) == (list(cfg.data.mean), list(cfg.data.std))
    assert (pre["resize"], pre["input_size"], pre["channels"]) == (cfg.data.eval_resize, cfg.data.global_crop_size, "RGB")
    model = timm.create_model(spec["model_name"], pretrained=False, **spec["kwargs"])
    model.load_state_dict(torch.load(tmp_path / "vit.pth"), strict=True)
    model.eval()
    ours = load_checkpoint(tiny_checkpoint).backbone("teacher")
    x = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        tokens, _ = ours(x)
        torch.testing.assert_close(model.forward_features(x), tokens)
        torch.testing.assert_close(model(x), tokens[:, 0])  # num_classes=0 + token pooling -> [CLS]


def test_export_student_and_bad_checkpoint_error(tiny_checkpoint, tmp_path, capsys):
    _, _, spec = export_backbone(tiny_checkpoint, tmp_path / "s.pth", which="student")
    assert spec["which"] == "student"
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    torch.save({"model": {}}, bogus / "state.pt")
    assert main([str(bogus), str(tmp_path / "x.pth")]) == 2
    assert "not an attmask_ray checkpoint" in capsys.readouterr().err
