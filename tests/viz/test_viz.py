"""Pictures of masks and attention: the drawn masks are exactly generate_masks' masks."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from attmask_ray.config import DataConfig, ModelConfig
from attmask_ray.masking import STRATEGIES, generate_masks
from attmask_ray.models import build_backbone
from attmask_ray.viz import (cls_attention, cls_attention_per_head, denormalise, draw_heads_figure,
                             draw_masks_figure, strategy_masks, top_mass_masks)
from attmask_ray.viz.cli import main
from attmask_ray.viz.inputs import normalise, square_crop
from attmask_ray.viz.render import grey_out, to_uint8, upscale

SIZE = 28  # tiny model: patch 4 -> 7x7 grid
PHOTOS = ("astronaut", "chelsea", "coffee")
TINY_OVERRIDE = ("model.arch=vit_tiny_patch16_224,model.patch_size=4,model.depth=3,model.embed_dim=48,"
                 "model.num_heads=3,data.global_crop_size=28,data.local_crop_size=12,data.eval_resize=32")


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Three real photos, centre-cropped to 28x28 and normalised: [3, 3, 28, 28]."""
    crops = np.stack([square_crop(getattr(skimage.data, n)(), SIZE) for n in PHOTOS])
    d = DataConfig()
    return normalise(crops, d.mean, d.std)


@pytest.fixture
def backbone(tiny_model_cfg: ModelConfig):
    torch.manual_seed(0)
    return build_backbone(tiny_model_cfg, SIZE, student=False).eval()


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_drawn_masks_are_generate_masks(tmp_path, photos, backbone):
    grid = backbone.grid(SIZE)
    attn = cls_attention(backbone, photos, layer=3)
    ratios = (0.3, 0.5)
    masks = strategy_masks(attn, grid, STRATEGIES, ratios, show_max=0.1, seed=7)
    images = denormalise(photos, DataConfig().mean, DataConfig().std)
    layout = draw_masks_figure(images, masks, attn, grid, tmp_path / "m.png", title="t")
    png = read_png(tmp_path / "m.png")
    assert png.shape[:2] == (layout.height, layout.width)
    f = layout.cell_h // SIZE
    patch = layout.cell_h // grid[0]
    for row in range(len(PHOTOS)):
        img = upscale(images[row], f)
        top, left, h, w = layout.cell_box(row, 0)
        assert np.array_equal(png[top:top + h, left:left + w], to_uint8(img))  # image column, pixel-exact
        greyed = to_uint8(grey_out(img, np.ones(grid[0] * grid[1], bool), grid)).astype(np.int16)
        plain = to_uint8(img).astype(np.int16)
        for col, (strategy, r) in enumerate(((s, r) for r in ratios for s in STRATEGIES), start=1):
            expected = generate_masks(attn, grid, strategy, ratio=(r, r), prob=1.0, show_max=0.1,
                                      generator=torch.Generator().manual_seed(7))[row]
            top, left, h, w = layout.cell_box(row, col)
            cell = png[top:top + h, left:left + w]
            drawn = []
            for p in range(grid[0] * grid[1]):
                ys, xs = slice((p // grid[1]) * patch, (p // grid[1] + 1) * patch), slice((p % grid[1]) * patch, (p % grid[1] + 1) * patch)
                if np.array_equal(cell[ys, xs], greyed[ys, xs]) and not np.array_equal(cell[ys, xs], plain[ys, xs]):
                    drawn.append(True)
                else:
                    assert np.array_equal(cell[ys, xs], plain[ys, xs]), f"patch {p} of {strategy} r={r} is neither plain nor greyed"
                    drawn.append(False)
            assert torch.equal(torch.tensor(drawn), expected), f"{strategy} r={r} row {row}"
            assert expected.sum() > 0  # masking_prob = 1: every row shows a mask


def test_per_head_attention_means_to_training_attention(photos, backbone):
    per_head = cls_attention_per_head(backbone, photos, layer=2)
    assert per_head.shape == (3, 3, 49)
    torch.testing.assert_close(per_head.mean(dim=1), cls_attention(backbone, photos, layer=2))


def test_top_mass_masks_hand_made():
    attn = torch.tensor([[0.1, 0.5, 0.1, 0.3], [0.25, 0.25, 0.25, 0.25]])
    assert top_mass_masks(attn, 0.6).tolist() == [[False, True, False, True], [True, True, True, False]]
    assert top_mass_masks(attn * 3, 0.6).tolist() == top_mass_masks(attn, 0.6).tolist()  # scale-free


def test_heads_figure_has_one_column_per_head(tmp_path, photos, backbone):
    per_head = cls_attention_per_head(backbone, photos, layer=3)
    images = denormalise(photos, DataConfig().mean, DataConfig().std)
    layout = draw_heads_figure(images, per_head, backbone.grid(SIZE), tmp_path / "h.png", title="t")
    png = read_png(tmp_path / "h.png")
    _, left, _, w = layout.cell_box(0, 2 + 3 - 1)  # image, all heads, head 1..3
    assert left + w <= png.shape[1] < left + w + 2 * layout.cell_w


def test_cli_masks_and_heads_on_photo_files(tmp_path, capsys):
    for name in PHOTOS[:2]:
        Image.fromarray(getattr(skimage.data, name)()).save(tmp_path / f"{name}.png")
    for cmd in ("masks", "heads"):
        out = tmp_path / f"{cmd}.png"
        assert main([cmd, "--random-init", "--override", TINY_OVERRIDE, "--images", str(tmp_path),
                     "--out", str(out)]) == 0
        assert out.exists() and Image.open(out).size[0] > 200


def test_cli_clear_errors(tmp_path, capsys):
    assert main(["masks", "--checkpoint", str(tmp_path / "nope"), "--images", str(tmp_path),
                 "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no checkpoint at") and err.count("\n") == 1
    assert main(["heads", "--random-init", "--images", str(tmp_path / "missing.jpg"),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "no image file or folder" in capsys.readouterr().err


def test_cli_draws_a_checkpoint_teacher(tmp_path, capsys):
    from attmask_ray.config import apply_overrides, ExperimentConfig, parse_overrides
    from attmask_ray.models import build_model
    from attmask_ray.checkpoint import save_checkpoint

    cfg = apply_overrides(ExperimentConfig(), parse_overrides(TINY_OVERRIDE + ",model.out_dim=64,model.patch_out_dim=64,"
                                                               "model.head_hidden_dim=32,model.head_bottleneck_dim=16"))
    state = {which: build_model(cfg.model, 28, student=which == "student").state_dict() for which in ("student", "teacher")}
    save_checkpoint(tmp_path / "ckpt", {**state, "step": 5}, cfg)
    Image.fromarray(skimage.data.chelsea()).save(tmp_path / "cat.jpg")
    out = tmp_path / "m.png"
    assert main(["masks", "--checkpoint", str(tmp_path / "ckpt"), "--images", str(tmp_path / "cat.jpg"),
                 "--out", str(out), "--ratio", "0.5"]) == 0, capsys.readouterr().err
    assert Image.open(out).size[1] > 112


def test_shard_samples_are_spread_over_classes(photo_shards):
    import numpy as np

    from attmask_ray.config import DataConfig
    from attmask_ray.viz.inputs import load_from_shards, spread_over_classes

    labels = np.array([0, 0, 0, 0, 1, 1, 2])  # a split sorted by class
    assert spread_over_classes(labels, 4).tolist() == [0, 1, 4, 6]  # one of each class, then a second of class 0
    assert spread_over_classes(labels, 100).tolist() == list(range(7))
    cfg = DataConfig(global_crop_size=64, eval_resize=64, num_workers=1)
    images, names = load_from_shards(photo_shards / "val", cfg, limit=3)
    assert images.shape == (3, 3, 64, 64)
    assert sorted(n.split("class ")[1] for n in names) == ["0)", "1)", "2)"]
