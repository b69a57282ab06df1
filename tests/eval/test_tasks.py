"""Feature extraction and the evaluation runner (in-process and as Ray tasks)."""

from __future__ import annotations

import functools

import pandas as pd
import pytest
import torch

from attmask_ray.checkpoint import CheckpointError, load_checkpoint
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import extract_features
from attmask_ray.eval.in_memory import tensor_batches, tensor_loader
from attmask_ray.eval.runner import run_evaluations
from attmask_ray.eval.tasks import TASKS, needed_kinds, parse_tasks

from tests.eval.toy import toy_split

# numba's dispatcher finalizer (FFCV loaders of other tests) may raise a harmless KeyError at any later GC
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_extract_features_kinds_match_direct_forward(tiny_checkpoint):
    backbone = load_checkpoint(tiny_checkpoint).backbone("teacher")
    images, labels = toy_split(4, 0)
    feats = extract_features(backbone, tensor_batches(images, labels, 5), ("cls", "gap", "cls4"), with_attn=True)
    with torch.no_grad():
        tokens, attn = backbone(images, attn_layer=backbone.depth)
        cls4 = backbone.intermediate_cls(images, 4 if backbone.depth >= 4 else backbone.depth)
    torch.testing.assert_close(feats["cls"], tokens[:, 0])
    torch.testing.assert_close(feats["gap"], tokens[:, 1:].mean(1))
    torch.testing.assert_close(feats["cls4"], cls4)
    torch.testing.assert_close(feats.attn, attn)
    assert feats["cls4"].shape == (12, 3 * 48) and torch.equal(feats.labels, labels)
    with pytest.raises(EvalError, match="val split yielded no images"):
        extract_features(backbone, [], ("cls",), name="val")


def test_task_parsing_and_needed_kinds(eval_cfg):
    assert parse_tasks("knn, masked") == ("knn", "masked")
    with pytest.raises(EvalError, match="unknown evaluation task"):
        parse_tasks("knn,linaer")
    assert needed_kinds(("knn", "linear"), eval_cfg) == (("cls", "cls4"), ("cls", "cls4"))
    assert needed_kinds(("masked",), eval_cfg) == (("cls",), ())


@pytest.mark.parametrize("name", TASKS)
def test_every_registered_task_runs_on_the_features_it_declares(name, tiny_checkpoint, toy_loader, eval_cfg):
    """A task is one module plus one registry entry: the runner extracts what the entry declares."""
    from attmask_ray.eval.features import KINDS

    entry = TASKS[name]
    assert entry.name == name and parse_tasks(name) == (name,)
    assert set(entry.train_kinds(eval_cfg)) | set(entry.val_kinds(eval_cfg)) <= set(KINDS)
    out = run_evaluations(tiny_checkpoint, name, local=True, loader_factory=toy_loader)
    assert out and all(isinstance(v, (int, float)) for v in out.values())


def test_run_evaluations_local_all_tasks_and_results_table(tiny_checkpoint, toy_loader, tmp_path):
    out = run_evaluations(tiny_checkpoint, "knn,fewshot,linear,masked", local=True, out_dir=tmp_path,
                          loader_factory=toy_loader, trial_id="t0")
    assert {"knn_top1", "knn_top5", "knn_top1_k10", "fewshot_nu1_mean", "fewshot_nu5_std", "linear_top1",
            "masked_r0_top1", "masked_r30_top1", "masked_r30_drop"} <= set(out)
    assert out["masked_r0_top1"] == out["knn_top1"]  # r = 0 is the plain k-NN (k = 20)
    assert out["knn_top1"] > 60  # quadrant classes are easy even for a random ViT
    table = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(table["source"]) == ["fewshot", "knn", "linear", "masked"]
    assert set(table["trial_id"]) == {"t0"} and table["checkpoint"].str.endswith("checkpoint_000000").all()
    assert table.loc[table.source == "knn", "knn_top1"].item() == out["knn_top1"]
    assert table["config/mask.strategy"].eq("attmask_high").all()
    assert table["writer"].eq("evaluate").all() and table["epoch"].dtype == float  # the one row type
    assert "knn_top1_k20" in table.columns and not any(c.startswith("knn_k") for c in table.columns)


def test_linear_full_mode_runs_augmented(tiny_checkpoint, toy_loader, eval_cfg):
    from dataclasses import replace
    out = run_evaluations(tiny_checkpoint, "linear", local=True, loader_factory=toy_loader,
                          eval_cfg=replace(eval_cfg, linear_mode="full", linear_epochs=2))
    assert 0 <= out["linear_top1"] <= 100 and out["linear_best_epoch"] in (1.0, 2.0)


def test_bad_inputs_give_clear_errors(tiny_checkpoint, tmp_path):
    images, labels = toy_split(4, 0)
    mismatch = functools.partial(tensor_loader, datasets={"train": (images, labels), "val": (images, labels + 3)})
    with pytest.raises(EvalError, match="train split has only 3 classes"):
        run_evaluations(tiny_checkpoint, "knn", local=True, loader_factory=mismatch)
    empty = functools.partial(tensor_loader, datasets={"train": (images[:0], labels[:0]), "val": (images, labels)})
    with pytest.raises(EvalError, match="train split yielded no images"):
        run_evaluations(tiny_checkpoint, "knn", local=True, loader_factory=empty)
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        run_evaluations(tmp_path, "knn", local=True, loader_factory=empty)
    torch.save({"format": "something_else"}, tmp_path / "state.pt")
    with pytest.raises(CheckpointError, match="not an attmask_ray checkpoint"):
        run_evaluations(tmp_path, "knn", local=True, loader_factory=empty)


def test_run_evaluations_as_ray_tasks_share_features(tiny_checkpoint, toy_loader, ray_cluster):
    local = run_evaluations(tiny_checkpoint, "knn,masked", local=True, loader_factory=toy_loader)
    remote = run_evaluations(tiny_checkpoint, "knn,masked", loader_factory=toy_loader)
    assert remote == pytest.approx(local)
    images, labels = toy_split(4, 0)
    mismatch = functools.partial(tensor_loader, datasets={"train": (images, labels), "val": (images, labels + 3)})
    with pytest.raises(EvalError, match="train split has only 3 classes"):
        run_evaluations(tiny_checkpoint, "knn", loader_factory=mismatch)
