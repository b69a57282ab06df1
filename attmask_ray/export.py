"""Export a checkpoint's backbone as a plain timm state dict.

    python -m attmask_ray.export CKPT OUT.pth [--student]

writes ``OUT.pth`` (the timm ViT ``state_dict``: no mask token, no head) and
``OUT.json`` ({"model_name": ..., "kwargs": {...}, "preprocessing": {mean, std, resize,
input_size, ...}}) and prints how to load it::

    model = timm.create_model(name, pretrained=False, **kwargs)
    model.load_state_dict(torch.load("OUT.pth"), strict=True)

``model.forward_features(x)`` then equals our backbone's tokens (after the final norm) at
the training grid size (``img_size``). At other input sizes timm resamples the position
embeddings with its own antialiased rule, which differs slightly from the DINO/iBOT rule
our backbone uses by default (``model.pos_interp``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from attmask_ray.config import ExperimentConfig
from attmask_ray.output_paths import output_problem
from attmask_ray.checkpoint import CheckpointError, load_checkpoint


class ExportError(ValueError):
    """The output path cannot hold the export; the message names the fix."""


def timm_kwargs(cfg: ExperimentConfig) -> dict[str, Any]:
    """The ``timm.create_model`` kwargs that rebuild our backbone exactly (no classifier)."""
    m = cfg.model
    kwargs: dict[str, Any] = {"num_classes": 0, "img_size": cfg.data.global_crop_size, "patch_size": m.patch_size,
                              "dynamic_img_size": True}
    for name in ("depth", "embed_dim", "num_heads"):
        if getattr(m, name) is not None:
            kwargs[name] = getattr(m, name)
    return kwargs


def preprocessing(cfg: ExperimentConfig) -> dict[str, Any]:
    """How evaluation inputs were made for this model (what a user must reproduce): RGB in [0, 1]
    normalised by ``mean``/``std``, shorter side resized to ``resize`` (OpenCV area/linear), centre crop
    ``input_size``."""
    d = cfg.data
    return {"mean": list(d.mean), "std": list(d.std), "resize": d.eval_resize, "input_size": d.global_crop_size,
            "interpolation": "opencv area (shrink) / linear (enlarge)", "channels": "RGB"}


def export_backbone(checkpoint: str | Path, out: str | Path, which: str = "teacher") -> tuple[Path, Path, dict[str, Any]]:
    """Write ``out`` (timm state dict) and ``out`` with suffix .json; returns (pth, json, spec)."""
    out = Path(out)
    if out.suffix == ".json":
        raise ExportError(f"output {out} ends in .json, where the timm kwargs go; name the weights file e.g. "
                          f"{out.with_suffix('.pth')}")
    if out.is_dir():
        raise ExportError(f"output {out} is a directory; give a file name, e.g. {out / 'backbone.pth'}")
    if out.suffix not in (".pth", ".pt"):
        raise ExportError(f"output {out} must end in .pth or .pt (the weights; the timm kwargs go next to it as .json), "
                          f"e.g. {out.with_suffix('.pth')}")
    problem = output_problem(out, kind="file")
    if problem:
        raise ExportError(f"output {out}: {problem}; choose another OUT path")
    ckpt = load_checkpoint(checkpoint)
    backbone = ckpt.backbone(which, "cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in backbone.vit.state_dict().items()}
    torch.save(state, out)
    spec = {"model_name": ckpt.config.model.arch, "kwargs": timm_kwargs(ckpt.config), "which": which,
            "checkpoint": str(ckpt.path), "step": ckpt.step, "preprocessing": preprocessing(ckpt.config)}
    meta = out.with_suffix(".json")
    meta.write_text(json.dumps(spec, indent=2) + "\n")
    return out, meta, spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attmask_ray.export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint directory (holding state.pt) or the state.pt file")
    parser.add_argument("out", help="output .pth file; the timm kwargs go to the same name with .json")
    parser.add_argument("--student", action="store_true", help="export the student backbone instead of the teacher")
    args = parser.parse_args(argv)
    try:
        pth, meta, spec = export_backbone(args.checkpoint, args.out, "student" if args.student else "teacher")
    except (CheckpointError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kwargs = ", ".join(f"{k}={v!r}" for k, v in spec["kwargs"].items())
    print(f"wrote {pth} ({spec['which']} backbone, step {spec['step']}) and {meta}")
    print(f"load: model = timm.create_model({spec['model_name']!r}, pretrained=False, {kwargs}); "
          f"model.load_state_dict(torch.load({str(pth)!r}), strict=True)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
