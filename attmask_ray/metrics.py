"""The one registry of metric names: what training reports, the evaluations return and
results.parquet holds.

k-NN metrics (online during training, the final evaluation, the floors) are named
``knn_top{1,5}_k{k}`` for every evaluated k, and ``knn_top1`` / ``knn_top5`` for the headline
k (:data:`HEADLINE_K` = 20, the paper's figure, or the first k when 20 is not evaluated).
Tables written before these names were shared called the final evaluation's
``knn_k{k}_top{1,5}``; :func:`canonical` maps them (results.py upgrades such tables on read).
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

HEADLINE_K = 20  # the paper's k-NN figure (k = 20, T = 0.07)

_LEGACY_KNN = re.compile(r"^knn_k(\d+)_top([15])$")


def headline_k(ks: Sequence[int]) -> int:
    """The k behind ``knn_top1`` / ``knn_top5``: 20 when evaluated, else the first k."""
    return HEADLINE_K if HEADLINE_K in ks else ks[0]


def knn_names(ks: Sequence[int]) -> list[str]:
    """Every k-NN metric name for the k values ``ks``: the headline pair, then per k top-1 and top-5."""
    return ["knn_top1", "knn_top5"] + [f"knn_top{t}_k{k}" for k in ks for t in (1, 5)]


def knn_metrics(res: Mapping[int, tuple[float, float]]) -> dict[str, float]:
    """``{k: (top-1 %, top-5 %)}`` (as :func:`attmask_ray.eval.knn.knn_classify` returns, keys in
    the order of the evaluated ks) -> named metrics: ``knn_top1_k{k}`` for every k, then every
    ``knn_top5_k{k}``, then the headline ``knn_top1`` and ``knn_top5``."""
    out = {f"knn_top1_k{k}": t1 for k, (t1, _) in res.items()} | {f"knn_top5_k{k}": t5 for k, (_, t5) in res.items()}
    out["knn_top1"], out["knn_top5"] = res[headline_k(list(res))]
    return out


def canonical(name: str) -> str:
    """The current name of a metric column: ``knn_k20_top1`` (written before) -> ``knn_top1_k20``."""
    m = _LEGACY_KNN.match(name)
    return f"knn_top{m.group(2)}_k{m.group(1)}" if m else name
