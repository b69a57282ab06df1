"""Recall@k (Table 8) on hand-placed features and through the evaluation runner."""

from __future__ import annotations

import functools
from dataclasses import replace

import pytest
import torch

from attmask_ray.checkpoint import load_checkpoint
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.in_memory import tensor_loader
from attmask_ray.eval.retrieval import recall_at_k
from attmask_ray.eval.runner import run_evaluations

from tests.eval.toy import toy_split

# four unit vectors at 0, 36.9, 53.1 and 90 degrees; classes 0, 1, 0, 1. Cosines: p0.p1 0.8, p0.p2 0.6,
# p0.p3 0, p1.p2 0.96, p1.p3 0.6, p2.p3 0.8. Nearest others: p0 -> p1 (x) p2 (ok); p1 -> p2 (x) p0 (x) p3 (ok);
# p2 -> p1 (x) p3 (x) p0 (ok); p3 -> p2 (x) p1 (ok).
POINTS = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
LABELS = torch.tensor([0, 1, 0, 1])


def test_recall_at_k_of_hand_placed_points():
    assert recall_at_k(POINTS, LABELS, ks=(1, 2, 3)) == pytest.approx({1: 0.0, 2: 50.0, 3: 100.0})
    assert recall_at_k(3 * POINTS, LABELS, ks=(1, 2, 3)) == recall_at_k(POINTS, LABELS, ks=(1, 2, 3))  # cosine
    assert recall_at_k(POINTS, LABELS, ks=(1, 2, 3), chunk=1) == recall_at_k(POINTS, LABELS, ks=(1, 2, 3))


def test_a_query_never_retrieves_itself_even_among_duplicates():
    same = torch.ones(4, 3)  # identical features: every similarity ties with the query's own
    assert recall_at_k(same, torch.tensor([0, 1, 2, 3]), ks=(1, 3)) == {1: 0.0, 3: 0.0}
    assert recall_at_k(same, torch.tensor([0, 0, 1, 1]), ks=(3,)) == {3: 100.0}  # all three others, own row not


def test_separate_gallery_protocol():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    queries = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    res = recall_at_k(queries, torch.tensor([0, 1, 1]), gallery, torch.tensor([0, 1]), ks=(1, 2))
    assert res == pytest.approx({1: 200 / 3, 2: 100.0})


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(EvalError, match=r"1 <= k <= 3 .*lower eval.retrieval_k"):
        recall_at_k(POINTS, LABELS, ks=(1, 4))
    with pytest.raises(EvalError, match="one D"):
        recall_at_k(POINTS, LABELS, torch.ones(4, 3), LABELS)
    with pytest.raises(EvalError, match="one label per feature"):
        recall_at_k(POINTS, LABELS[:3])


def test_retrieval_task_through_the_runner(tiny_checkpoint, eval_cfg):
    """Quadrant classes: the frozen random ViT already retrieves its own class; a gallery split
    (In-Shop protocol) and a retrieval split other than val are read by the task itself."""
    loader = functools.partial(tensor_loader, datasets={"train": toy_split(6, 0), "val": toy_split(5, 1)})
    own = run_evaluations(tiny_checkpoint, "retrieval", local=True, loader_factory=loader)
    assert set(own) == {"retrieval_r1", "retrieval_r2", "retrieval_r4", "retrieval_r8"}
    assert own["retrieval_r1"] <= own["retrieval_r2"] <= own["retrieval_r4"] <= own["retrieval_r8"] == 100.0
    gallery = run_evaluations(tiny_checkpoint, "retrieval", local=True, loader_factory=loader,
                              eval_cfg=replace(eval_cfg, retrieval_gallery_path="train", retrieval_k=(1, 13)))
    assert set(gallery) == {"retrieval_r1", "retrieval_r13"} and gallery["retrieval_r13"] == 100.0  # > 12 per class
    other = run_evaluations(tiny_checkpoint, "retrieval", local=True, loader_factory=loader,
                            eval_cfg=replace(eval_cfg, retrieval_path="train"))  # its own split, not val
    images, labels = toy_split(6, 0)
    backbone = load_checkpoint(tiny_checkpoint).backbone()
    with torch.no_grad():
        feats = backbone(images)[0][:, 0]
    assert other == pytest.approx({f"retrieval_r{k}": v for k, v in recall_at_k(feats, labels).items()})
