"""Image retrieval without fine-tuning (paper Table 8: CUB, Cars, SOP, In-Shop): Recall@k.

The frozen backbone's L2-normalised features (``eval.knn_feature``, as for k-NN) rank a gallery
by cosine similarity; Recall@k (``eval.retrieval_k``) is the share of queries with at least one
image of their own class among their k nearest gallery images. The retrieval split
(``eval.retrieval_path``, default the val split) holds classes never used for training (CUB:
classes 101-200, ``data_prep.imagefolder --classes 100:``; Cars: 99-196; on the embedded data
Fashion-MNIST classes 5-9, ``data_prep.fashion_mnist --classes 5:10``). Two protocols:

* no ``eval.retrieval_gallery_path`` (CUB, Cars, SOP): every image of the retrieval split queries
  all the others (itself excluded);
* with it (In-Shop): the retrieval split holds the queries, that split is the gallery.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from attmask_ray.config import EvalConfig
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, extract_features
from attmask_ray.eval.knn import topk_neighbours
from attmask_ray.eval.spec import EvalSpec


def check_gallery(ks: Sequence[int], gallery_size: int, self_gallery: bool) -> None:
    """Every k must fit in the gallery (less the query itself when the split is its own gallery)."""
    available = gallery_size - (1 if self_gallery else 0)
    if min(ks) < 1 or max(ks) > available:
        raise EvalError(f"retrieval: Recall@k needs 1 <= k <= {available} (gallery size{' - 1' if self_gallery else ''}), "
                        f"got k = {list(ks)}; lower eval.retrieval_k or use a larger retrieval split")


def check_retrieval(e: EvalConfig, val_size: int) -> None:
    """Before any task runs: the retrieval and gallery splits exist and every k fits in the gallery
    (``val_size``: the val split's size, the retrieval split when ``eval.retrieval_path`` is unset)."""
    from attmask_ray.data import check_dataset

    size = check_dataset(e.retrieval_path).num_samples if e.retrieval_path is not None else val_size
    if e.retrieval_gallery_path is None:
        check_gallery(e.retrieval_k, size, self_gallery=True)
    else:
        check_gallery(e.retrieval_k, check_dataset(e.retrieval_gallery_path).num_samples, self_gallery=False)


def recall_at_k(queries: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor | None = None,
                gallery_labels: torch.Tensor | None = None, ks: Sequence[int] = (1, 2, 4, 8),
                chunk: int = 1024) -> dict[int, float]:
    """Recall@k in %. queries [Q, D], query_labels [Q]; gallery [N, D], gallery_labels [N].

    Without a gallery the queries are their own gallery and each query's own row is excluded.
    """
    self_gallery = gallery is None
    gallery = queries if gallery is None else gallery
    gallery_labels = query_labels if gallery_labels is None else gallery_labels
    if queries.ndim != 2 or gallery.ndim != 2 or queries.shape[1] != gallery.shape[1]:
        raise EvalError(f"retrieval features must be [Q, D] and [N, D] with one D, got {tuple(queries.shape)} "
                        f"and {tuple(gallery.shape)}")
    if len(query_labels) != len(queries) or len(gallery_labels) != len(gallery):
        raise EvalError("retrieval: one label per feature row is needed")
    check_gallery(ks, len(gallery), self_gallery)
    kmax = max(ks)
    g = F.normalize(gallery.float(), dim=1)
    hits = {k: 0 for k in ks}
    for start in range(0, len(queries), chunk):
        q = F.normalize(queries[start:start + chunk].float(), dim=1)
        _, idx = topk_neighbours(g, q, kmax + (1 if self_gallery else 0))
        if self_gallery:  # drop each query's own row (not always first: duplicates tie with it)
            own = torch.arange(start, start + len(q), device=idx.device).view(-1, 1)
            keep = idx != own
            keep[keep.sum(1) > kmax, -1] = False  # own row absent: drop the last of kmax + 1 instead
            idx = idx[keep].view(len(q), kmax)
        same = gallery_labels[idx] == query_labels[start:start + chunk].view(-1, 1)  # [b, kmax]
        for k in ks:
            hits[k] += int(same[:, :k].any(dim=1).sum())
    return {k: 100.0 * hits[k] / len(queries) for k in ks}


def retrieval_metrics(res: dict[int, float]) -> dict[str, float]:
    """``{k: recall %}`` -> ``{"retrieval_r{k}": recall %}``."""
    return {f"retrieval_r{k}": v for k, v in res.items()}


def retrieval_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``retrieval`` evaluation task: Recall@k of the retrieval split against itself or the gallery split."""
    e = spec.eval_cfg
    kind = e.knn_feature
    if e.retrieval_path is None and e.retrieval_gallery_path is None:  # the val features the runner extracted
        return retrieval_metrics(recall_at_k(val[kind], val.labels, ks=e.retrieval_k, chunk=e.knn_chunk))
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)

    def feats(path: str) -> Features:
        batches = spec.loader_factory(path, ckpt.config.data, e.batch_size, device=str(spec.device))
        return extract_features(backbone, batches, (kind,), spec.device, name=f"retrieval {path}")

    queries = val if e.retrieval_path is None else feats(e.retrieval_path)
    if e.retrieval_gallery_path is None:
        return retrieval_metrics(recall_at_k(queries[kind], queries.labels, ks=e.retrieval_k, chunk=e.knn_chunk))
    gallery = feats(e.retrieval_gallery_path)
    return retrieval_metrics(recall_at_k(queries[kind], queries.labels, gallery[kind], gallery.labels,
                                         e.retrieval_k, e.knn_chunk))
