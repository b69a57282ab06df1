"""The in9 task (Table 4): one probe trained on Original, scored on every variant."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.in9 import check_in9_root, in9_paths
from attmask_ray.eval.in_memory import tensor_loader
from attmask_ray.eval.runner import run_evaluations
from data_prep.in9 import VARIANTS

from tests.eval.toy import toy_split


def in9_splits(blank: tuple[str, ...]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """in9/train: quadrant images; every variant: other quadrant images, or for ``blank`` ones the
    same labels on identical all-zero images (no information: one prediction for all)."""
    val_images, val_labels = toy_split(5, 1)
    out = {"in9/train": toy_split(12, 0)}
    for v in VARIANTS:
        out[f"in9/{v}"] = (torch.zeros_like(val_images), val_labels) if v in blank else (val_images, val_labels)
    return out


def test_probe_trained_on_original_scores_every_variant(tiny_checkpoint, eval_cfg):
    loader = functools.partial(tensor_loader, datasets=in9_splits(blank=("no_fg", "only_bg_b", "mixed_rand")))
    out = run_evaluations(tiny_checkpoint, "in9", local=True, loader_factory=loader,
                          eval_cfg=replace(eval_cfg, in9_root="in9", linear_epochs=20, linear_lr=0.5, linear_batch_size=8))
    assert set(out) == {f"in9_{v}" for v in VARIANTS} | {"in9_bg_gap"}
    assert out["in9_original"] > 60  # quadrant classes are linearly separable even for a random ViT
    assert out["in9_original"] == out["in9_only_fg"] == out["in9_mixed_same"]  # same images, same probe
    for v in ("no_fg", "only_bg_b", "mixed_rand"):  # identical inputs -> one class predicted -> 1 in 3
        assert out[f"in9_{v}"] == pytest.approx(100 / 3)
    assert out["in9_bg_gap"] == pytest.approx(out["in9_mixed_same"] - out["in9_mixed_rand"])


def test_in9_root_problems_are_one_line_errors(tmp_path, tiny_checkpoint, eval_cfg):
    with pytest.raises(EvalError, match="needs eval.in9_root"):
        check_in9_root(None)
    with pytest.raises(EvalError, match="does not exist"):
        check_in9_root(str(tmp_path / "nowhere"))
    (tmp_path / "train").mkdir()
    with pytest.raises(EvalError, match="lacks the original/ split"):
        check_in9_root(str(tmp_path))
    with pytest.raises(EvalError, match="lacks the original/ split"):  # before any task starts
        run_evaluations(tiny_checkpoint, "in9", local=True, eval_cfg=replace(eval_cfg, in9_root=str(tmp_path)))
    assert list(in9_paths("r")) == ["train", *VARIANTS] and in9_paths("r")["only_fg"] == "r/only_fg"


def test_class_mismatch_between_variants_is_refused(tiny_checkpoint, eval_cfg):
    splits = in9_splits(blank=())
    images, labels = splits["in9/mixed_next"]
    splits["in9/mixed_next"] = (images, labels + 3)
    loader = functools.partial(tensor_loader, datasets=splits)
    with pytest.raises(EvalError, match="mixed_next has labels up to 5 but train has 3 classes"):
        run_evaluations(tiny_checkpoint, "in9", local=True, loader_factory=loader,
                        eval_cfg=replace(eval_cfg, in9_root="in9", linear_epochs=1))
