"""``python -m attmask_ray.viz {masks,heads}``: pictures of masks and attention.

Model: ``--checkpoint DIR`` (its TEACHER at the configured attention layer) or
``--random-init`` (a fresh teacher from the default config + ``--override``; its
attention means nothing, and the title says so). Images: ``--data SHARDS`` (the
evaluation loader) or ``--images DIR_OR_FILES`` (any photos).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from attmask_ray.config import ConfigError, ExperimentConfig, apply_overrides, parse_overrides
from attmask_ray.masking import STRATEGIES
from attmask_ray.models import MaskedViT, build_backbone
from attmask_ray.output_paths import output_problem
from attmask_ray.devices import device_problem
from attmask_ray.viz.attention import cls_attention, cls_attention_per_head
from attmask_ray.viz.heads import draw_heads_figure
from attmask_ray.viz.inputs import VizError, load_from_shards, load_photos
from attmask_ray.viz.masks import draw_masks_figure, strategy_masks
from attmask_ray.viz.render import denormalise


@dataclass
class Subject:
    """The network being pictured and how to describe it."""

    backbone: MaskedViT
    config: ExperimentConfig
    label: str  # for the figure title
    trained: bool


def load_subject(args: argparse.Namespace) -> Subject:
    """Teacher of ``--checkpoint`` or a random-init teacher (config + ``--override``)."""
    overrides = parse_overrides(args.override) if args.override else {}
    if args.checkpoint:
        from attmask_ray.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.checkpoint)
        cfg = apply_overrides(ckpt.config, overrides) if overrides else ckpt.config
        backbone = ckpt.backbone("teacher", args.device)
        return Subject(backbone, cfg, f"{ckpt.config.name} teacher, step {ckpt.step}", trained=True)
    cfg = apply_overrides(ExperimentConfig(), overrides)
    torch.manual_seed(args.seed)
    backbone = build_backbone(cfg.model, cfg.data.global_crop_size, student=False).to(args.device).eval()
    return Subject(backbone, cfg, "RANDOM-INIT teacher: attention is NOT meaningful (untrained)", trained=False)


def load_images(args: argparse.Namespace, cfg: ExperimentConfig) -> tuple[torch.Tensor, list[str]]:
    if args.images:
        return load_photos(args.images, cfg.data, args.num_images)
    return load_from_shards(args.data, cfg.data, args.num_images)


def run_masks(args: argparse.Namespace) -> Path:
    subject = load_subject(args)
    cfg = subject.config
    layer = args.layer or cfg.attn_layer
    images, names = load_images(args, cfg)
    images = images.to(args.device)
    grid = subject.backbone.grid(tuple(images.shape[-2:]))
    attn = cls_attention(subject.backbone, images, layer)
    masks = strategy_masks(attn, grid, args.strategies, args.ratio, cfg.mask.show_max, args.seed)
    title = (f"Masks at masking_prob = 1 ({grid[0]}x{grid[1]} patches); attention: {subject.label}, "
             f"layer {layer}/{subject.backbone.depth}")
    draw_masks_figure(denormalise(images, cfg.data.mean, cfg.data.std), masks, attn, grid, args.out, title, names)
    return Path(args.out)


def run_heads(args: argparse.Namespace) -> Path:
    subject = load_subject(args)
    cfg = subject.config
    layer = args.layer or subject.backbone.depth
    images, names = load_images(args, cfg)
    images = images.to(args.device)
    grid = subject.backbone.grid(tuple(images.shape[-2:]))
    head_attn = cls_attention_per_head(subject.backbone, images, layer)
    title = f"Per-head [CLS] attention, layer {layer}/{subject.backbone.depth}: {subject.label}"
    draw_heads_figure(denormalise(images, cfg.data.mean, cfg.data.std), head_attn, grid, args.out, title,
                      mass=args.mass, row_titles=names)
    return Path(args.out)


def _ratio(text: str) -> float:
    r = float(text)
    if not 0.0 <= r <= 1.0:
        raise argparse.ArgumentTypeError(f"ratio must be in [0, 1], got {text}")
    return r


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.viz", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    model = common.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="checkpoint directory (or its state.pt); its teacher is drawn")
    model.add_argument("--random-init", action="store_true", help="a fresh, untrained teacher (attention meaningless)")
    src = common.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="evaluation split: folder of FFCV shards + manifest")
    src.add_argument("--images", nargs="+", help="image files and/or folders of images (any photos)")
    common.add_argument("--out", required=True, help="PNG to write")
    common.add_argument("--num-images", type=int, default=4, help="rows (images) in the picture")
    common.add_argument("--layer", type=int, default=None, help="1-based block for the attention (masks: config's attn layer; heads: last)")
    common.add_argument("--override", default="", help='config overrides, e.g. "model.patch_size=8,data.global_crop_size=112"')
    common.add_argument("--seed", type=int, default=0, help="seed of the masks (and of a random-init model)")
    common.add_argument("--device", default="cpu")
    m = sub.add_parser("masks", parents=[common], help="masks of each strategy + mean [CLS] attention (Fig. A6/A7, 3b)")
    m.add_argument("--ratio", type=_ratio, nargs="+", default=[0.3], help="masking ratio(s) r; one column per (strategy, r)")
    m.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES), metavar="STRATEGY",
                   help=f"columns, from {', '.join(STRATEGIES)}")
    h = sub.add_parser("heads", parents=[common], help="each head's top-mass [CLS]-attention patches (Fig. A5)")
    h.add_argument("--mass", type=float, default=0.6, help="attention mass each head's patches hold")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = ("--num-images must be >= 1" if args.num_images < 1 else device_problem(args.device))
    if problem is None and (why := output_problem(args.out, kind="file")):
        problem = f"--out {args.out}: {why}; choose another PNG path"
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        out = run_masks(args) if args.command == "masks" else run_heads(args)
    except (VizError, ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # CheckpointError, DataError (both ValueError) and bad layer/shapes
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
