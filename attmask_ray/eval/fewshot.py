"""Few-shot k-NN (SPEC §6): only ``nu`` train images per class, averaged over slices.

Sampling: each class's train indices (in dataset order) are shuffled ONCE with a
seeded generator (one fixed order per class, independent of nu); try ``t`` takes the
consecutive chunk ``order[t*nu : (t+1)*nu]``, so the ``tries`` slices are disjoint.
When a class has fewer than ``nu * tries`` images the chunks wrap around cyclically
(slice t starts at ``(t * nu) mod n_c``): every slice still holds exactly ``nu`` distinct
images and slices differ whenever n_c > nu, but they may overlap. A class with fewer
than ``nu`` images cannot form a slice and raises :class:`EvalError`.
k = 1 for nu = 1, else 20 (clamped to the few-shot train-set size).
"""

from __future__ import annotations

import statistics
from typing import Sequence

import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features
from attmask_ray.eval.knn import knn_classify
from attmask_ray.eval.spec import EvalSpec, num_classes_of
from attmask_ray.metrics import HEADLINE_K


def fewshot_k(nu: int) -> int:
    """The paper's k: 1 for one image per class, else the headline k (20)."""
    return 1 if nu == 1 else HEADLINE_K


def class_orders(labels: torch.Tensor, seed: int = 0) -> dict[int, torch.Tensor]:
    """{class: its train indices in one fixed, seeded random order}. labels: [N]."""
    labels = labels.long().cpu()
    g = torch.Generator().manual_seed(seed)
    orders = {}
    for c in torch.unique(labels).tolist():  # sorted, so the generator stream is deterministic
        idx = (labels == c).nonzero().view(-1)
        orders[int(c)] = idx[torch.randperm(len(idx), generator=g)]
    return orders


def fewshot_slices(labels: torch.Tensor, nu: int, tries: int = 5, seed: int = 0) -> list[torch.Tensor]:
    """``tries`` index sets [nu * C], each with exactly ``nu`` train indices per class."""
    if nu < 1 or tries < 1:
        raise EvalError(f"few-shot needs nu >= 1 and tries >= 1, got nu={nu}, tries={tries}")
    orders = class_orders(labels, seed)
    if not orders:
        raise EvalError("few-shot: the train split is empty")
    small = {c: len(o) for c, o in orders.items() if len(o) < nu}
    if small:
        c, n = next(iter(small.items()))
        raise EvalError(f"few-shot nu={nu}: class {c} has only {n} train images ({len(small)} classes short); "
                        "lower eval.fewshot_nu or use a larger train split")
    slices = []
    for t in range(tries):
        parts = []
        for order in orders.values():
            pos = (t * nu + torch.arange(nu)) % len(order)
            parts.append(order[pos])
        slices.append(torch.cat(parts))
    return slices


def fewshot_knn(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor,
                query_labels: torch.Tensor, nus: Sequence[int] = (1, 5, 10, 20), tries: int = 5,
                temperature: float = 0.07, num_classes: int | None = None, seed: int = 0,
                chunk: int = 1024) -> dict[str, float]:
    """Few-shot k-NN top-1. train [N, D], train_labels [N], queries [Q, D], query_labels [Q].

    Returns ``{"fewshot_nu{nu}_mean": %, "fewshot_nu{nu}_std": % (population std over tries),
    "fewshot_nu{nu}_min"/"_max": %}`` for every nu.
    """
    train_labels = train_labels.long()
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1 if len(train_labels) else 0
    out: dict[str, float] = {}
    for nu in nus:
        k = fewshot_k(nu)
        accs = []
        for idx in fewshot_slices(train_labels, nu, tries, seed):
            res = knn_classify(train[idx], train_labels[idx], queries, query_labels, ks=(k,),
                               temperature=temperature, num_classes=num_classes, chunk=chunk)
            accs.append(res[k][0])
        out[f"fewshot_nu{nu}_mean"] = statistics.fmean(accs)
        out[f"fewshot_nu{nu}_std"] = statistics.pstdev(accs)
        out[f"fewshot_nu{nu}_min"] = min(accs)
        out[f"fewshot_nu{nu}_max"] = max(accs)
    return out


def fewshot_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``fewshot`` evaluation task: :func:`fewshot_knn` for every ``eval.fewshot_nu``."""
    e = spec.eval_cfg
    kind = e.knn_feature
    return fewshot_knn(train[kind], train.labels, val[kind], val.labels, nus=e.fewshot_nu, tries=e.fewshot_tries,
                       temperature=e.knn_temperature, num_classes=num_classes_of(train, val, spec.num_classes),
                       seed=spec.load().config.seed, chunk=e.knn_chunk)
