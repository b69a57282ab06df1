"""Weighted k-NN classifier on frozen features (DINO's ``knn_classifier``, SPEC §6).

Features are L2-normalised; for each query the max(k) most cosine-similar train
features are found ONCE and sliced for every smaller k; each neighbour votes for its
class with weight ``exp(cos / T)`` (T = 0.07); votes are summed per class; top-1 and
top-5 (over ``min(5, k)`` predictions, as DINO) are reported in percent.

Memory stays bounded whatever the train-set size: queries are processed ``chunk`` at a
time and, inside a query chunk, the train features are scanned in blocks whose
similarity block ``[chunk, train_block]`` fits ``max_block_bytes``; a running top-k is
merged block by block. Train features are never copied: cosine = (q / |q|) . t * (1 / |t|)
with the N inverse norms precomputed. Peak extra memory ~ chunk * train_block * 4 bytes
(256 MiB by default) + 4N bytes of norms + O(chunk * k).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features
from attmask_ray.eval.spec import EvalSpec, num_classes_of
from attmask_ray.metrics import knn_metrics

DEFAULT_BLOCK_BYTES = 256 * 2**20


def _check_inputs(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor,
                  query_labels: torch.Tensor | None, num_classes: int) -> None:
    if train.ndim != 2 or queries.ndim != 2:
        raise EvalError(f"k-NN needs 2-D features, got train {tuple(train.shape)} and queries {tuple(queries.shape)}")
    if train.shape[0] == 0:
        raise EvalError("k-NN train features are empty: the train split yielded no images")
    if queries.shape[0] == 0:
        raise EvalError("k-NN query features are empty: the validation split yielded no images")
    if train.shape[1] != queries.shape[1]:
        raise EvalError(f"train features are {train.shape[1]}-d but queries are {queries.shape[1]}-d: extract both with the same model")
    if train_labels.shape[0] != train.shape[0]:
        raise EvalError(f"{train.shape[0]} train features but {train_labels.shape[0]} labels")
    if int(train_labels.max()) >= num_classes or int(train_labels.min()) < 0:
        raise EvalError(f"train labels span [{int(train_labels.min())}, {int(train_labels.max())}] but num_classes={num_classes}")
    if query_labels is not None and (int(query_labels.max()) >= num_classes or int(query_labels.min()) < 0):
        raise EvalError(f"validation labels reach {int(query_labels.max())} but the train split has {num_classes} classes: "
                        "train and val must share one class list")


def check_bank(ks: Sequence[int], bank_size: int, bank: str = "") -> None:
    """Refuse k values larger than the k-NN bank (train features): they would silently be capped
    at the bank size while the metric still says ``k{k}``. One line naming the bank and the fix."""
    too_big = sorted(k for k in set(ks) if k > bank_size)
    if not too_big:
        return
    fitting = "(" + ",".join(map(str, sorted(k for k in set(ks) if k <= bank_size) or [bank_size])) + ",)"
    where = f" {bank}" if bank else ""
    raise EvalError(f"eval.knn_k asks for k={','.join(map(str, too_big))} but the k-NN bank{where} holds only "
                    f"{bank_size} images (a larger k would silently mean k={bank_size}); set eval.knn_k={fitting} "
                    f"(evaluate: --set \"eval.knn_k={fitting}\") or use a larger bank (evaluate --train PATH; "
                    "sweeps: data.knn_train_path)")


def inverse_norms(train: torch.Tensor) -> torch.Tensor:
    """1 / ||row|| for train [N, D] -> [N] (no normalised copy of the train set is made)."""
    return torch.linalg.vector_norm(train, dim=1).clamp_min_(1e-12).reciprocal_()


def topk_neighbours(train: torch.Tensor, queries: torch.Tensor, k: int,
                    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
                    train_scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k neighbours of ``queries`` [Q, D] among ``train`` [N, D] by dot product.

    With L2-normalised queries and ``train_scale`` = :func:`inverse_norms` (or a normalised
    train set and no scale) the scores are cosine similarities. Scans train in blocks of
    ``max_block_bytes // (4 * Q)`` rows, merging a running top-k.
    Returns (scores [Q, k] sorted descending, train indices [Q, k] int64).
    """
    n, q = train.shape[0], queries.shape[0]
    k = min(k, n)
    block = max(k, max_block_bytes // (4 * max(q, 1)))
    best_val = best_idx = None
    for start in range(0, n, block):
        sim = queries @ train[start:start + block].T  # [Q, b]
        if train_scale is not None:
            sim.mul_(train_scale[start:start + block])
        if block >= n:  # one block: exactly the full-matrix computation
            return sim.topk(k, dim=1, largest=True, sorted=True)
        val, idx = sim.topk(min(k, sim.shape[1]), dim=1, largest=True, sorted=False)
        idx = idx + start
        if best_val is not None:
            val, pos = torch.cat([best_val, val], 1).topk(k, dim=1, largest=True, sorted=False)
            idx = torch.cat([best_idx, idx], 1).gather(1, pos)
        best_val, best_idx = val, idx
        del sim
    order = best_val.argsort(dim=1, descending=True)
    return best_val.gather(1, order), best_idx.gather(1, order)


def iter_knn_scores(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor,
                    ks: Sequence[int], num_classes: int, temperature: float = 0.07, chunk: int = 1024,
                    max_block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[tuple[slice, dict[int, torch.Tensor]]]:
    """Yield ``(query slice, {k: class scores [chunk, C]})`` chunk by chunk.

    train: [N, D], queries: [Q, D] (normalised here); scores[c] = sum over the k nearest
    train features of class c of exp(cos / temperature).
    """
    train = train.float()  # a no-op for float32 features; no normalised copy (memory stays O(block))
    scale = inverse_norms(train)
    kmax = min(max(ks), train.shape[0])
    for start in range(0, queries.shape[0], chunk):
        sl = slice(start, min(start + chunk, queries.shape[0]))
        q = F.normalize(queries[sl].float(), dim=1)
        sim, idx = topk_neighbours(train, q, kmax, max_block_bytes, scale)
        weights = (sim / temperature).exp()  # [b, kmax]
        neighbour_labels = train_labels[idx]  # [b, kmax]
        scores = {}
        for k in ks:
            kk = min(k, kmax)
            s = torch.zeros(q.shape[0], num_classes, dtype=weights.dtype, device=weights.device)
            s.scatter_add_(1, neighbour_labels[:, :kk], weights[:, :kk])
            scores[k] = s
        yield sl, scores


def knn_classify(train: torch.Tensor, train_labels: torch.Tensor, queries: torch.Tensor,
                 query_labels: torch.Tensor, ks: Sequence[int] = (10, 20, 100, 200),
                 temperature: float = 0.07, num_classes: int | None = None, chunk: int = 1024,
                 max_block_bytes: int = DEFAULT_BLOCK_BYTES,
                 device: str | torch.device | None = None) -> dict[int, tuple[float, float]]:
    """Weighted k-NN accuracy. train [N, D], train_labels [N], queries [Q, D], query_labels [Q].

    ``device`` (e.g. "cuda") moves the features there first; None computes where they are.
    Returns ``{k: (top1 %, top5 %)}``; top-5 counts the first ``min(5, k)`` predictions (DINO).
    """
    if device is not None:
        train, train_labels = train.to(device), train_labels.to(device)
        queries, query_labels = queries.to(device), query_labels.to(device)
    train_labels = train_labels.long()
    query_labels = query_labels.long()
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1 if len(train_labels) else 0
    _check_inputs(train, train_labels, queries, query_labels, num_classes)
    top1 = {k: 0 for k in ks}
    top5 = {k: 0 for k in ks}
    for sl, scores in iter_knn_scores(train, train_labels, queries, ks, num_classes, temperature, chunk, max_block_bytes):
        target = query_labels[sl].view(-1, 1)
        for k, s in scores.items():
            pred = s.topk(min(5, k, num_classes), dim=1).indices
            correct = pred.eq(target)
            top1[k] += int(correct[:, 0].sum())
            top5[k] += int(correct.any(dim=1).sum())
    n = queries.shape[0]
    return {k: (100.0 * top1[k] / n, 100.0 * top5[k] / n) for k in ks}


def knn_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``knn`` evaluation task: weighted k-NN of the val features against the train bank for
    every ``eval.knn_k`` -> the k-NN metrics of :func:`attmask_ray.metrics.knn_metrics`."""
    e = spec.eval_cfg
    kind = e.knn_feature
    num_classes = num_classes_of(train, val, spec.num_classes)
    check_bank(e.knn_k, len(train), spec.train_path)  # on real datasets already checked before any work
    res = knn_classify(train[kind], train.labels, val[kind], val.labels, ks=e.knn_k, temperature=e.knn_temperature,
                       num_classes=num_classes, chunk=e.knn_chunk, device=spec.device)
    return knn_metrics(res)
