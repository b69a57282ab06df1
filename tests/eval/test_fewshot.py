"""Few-shot sampling: exactly nu per class, disjoint slices per try, deterministic."""

from __future__ import annotations

import pytest
import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.fewshot import fewshot_k, fewshot_knn, fewshot_slices


def _labels():
    return torch.tensor([c for c in range(4) for _ in range(30)])[torch.randperm(120, generator=torch.Generator().manual_seed(3))]


@pytest.mark.parametrize("nu", [1, 5])
def test_exactly_nu_per_class_disjoint_and_deterministic(nu):
    labels = _labels()
    slices = fewshot_slices(labels, nu, tries=5, seed=0)
    assert len(slices) == 5
    for idx in slices:
        assert len(idx) == 4 * nu and len(set(idx.tolist())) == 4 * nu
        assert torch.bincount(labels[idx], minlength=4).tolist() == [nu] * 4
    flat = torch.cat(slices).tolist()
    assert len(set(flat)) == len(flat)  # 5 * nu <= 30: disjoint slices
    again = fewshot_slices(labels, nu, tries=5, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(slices, again))
    other = fewshot_slices(labels, nu, tries=5, seed=1)
    assert not all(torch.equal(a, b) for a, b in zip(slices, other))


def test_small_classes_wrap_around_and_too_small_raises():
    labels = torch.tensor([0] * 12 + [1] * 30)
    slices = fewshot_slices(labels, 5, tries=5)
    for idx in slices:
        assert torch.bincount(labels[idx]).tolist() == [5, 5]
    assert len({tuple(sorted(i.tolist())) for i in slices}) == 5  # slices still differ
    with pytest.raises(EvalError, match="class 0 has only 12"):
        fewshot_slices(labels, 20, tries=5)


def test_fewshot_knn_reports_mean_and_spread():
    g = torch.Generator().manual_seed(0)
    labels = _labels()
    centres = torch.randn(4, 8, generator=g) * 3
    feats = centres[labels] + torch.randn(120, 8, generator=g)
    out = fewshot_knn(feats, labels, feats, labels, nus=(1, 5), tries=5)
    assert fewshot_k(1) == 1 and fewshot_k(5) == 20
    assert set(out) == {f"fewshot_nu{n}_{s}" for n in (1, 5) for s in ("mean", "std", "min", "max")}
    assert out["fewshot_nu5_min"] <= out["fewshot_nu5_mean"] <= out["fewshot_nu5_max"]
    assert out["fewshot_nu5_mean"] > 80
