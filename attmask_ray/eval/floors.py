"""Floors for the k-NN (and retrieval) metrics: raw pixels and a random-init ViT, on the same splits and protocol.

A trained model that does not beat both floors has learned nothing useful; the report
prints them next to the trained models (issue: evidence).
"""

from __future__ import annotations

import torch

from attmask_ray.config import ExperimentConfig
from attmask_ray.eval.features import extract_features
from attmask_ray.eval.knn import knn_classify
from attmask_ray.eval.loaders import default_loader
from attmask_ray.metrics import headline_k


def _pixels(path: str, cfg: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-loader images (resized, centre-cropped, normalised) flattened: [N, 3*G*G], labels [N]."""
    feats, labels = [], []
    for batch in default_loader(path, cfg.data, cfg.eval.batch_size):
        feats.append(batch[0].flatten(1).float())
        labels.append(batch[1].long().view(-1))
    return torch.cat(feats), torch.cat(labels)


def knn_floors(cfg: ExperimentConfig) -> dict[str, float]:
    """k-NN top-1/top-5 (the headline k, 20, T=0.07, cosine) of raw pixels and of a random-init teacher backbone.

    Uses the config's k-NN bank (data.knn_train_path or data.train_path) and data.val_path,
    the same protocol as the online k-NN of training.
    """
    from attmask_ray.models import build_model

    bank = cfg.data.knn_train_path or cfg.data.train_path
    ks = cfg.eval.knn_k
    x_train, y_train = _pixels(bank, cfg)
    x_val, y_val = _pixels(cfg.data.val_path, cfg)
    raw = knn_classify(x_train, y_train, x_val, y_val, ks=ks, temperature=cfg.eval.knn_temperature)
    torch.manual_seed(cfg.seed)
    backbone = build_model(cfg.model, cfg.data.global_crop_size, student=False).backbone.eval()
    kind = cfg.eval.knn_feature
    f_train = extract_features(backbone, default_loader(bank, cfg.data, cfg.eval.batch_size), (kind,), name="k-NN train")
    f_val = extract_features(backbone, default_loader(cfg.data.val_path, cfg.data, cfg.eval.batch_size), (kind,),
                             name="k-NN val")
    rnd = knn_classify(f_train[kind], f_train.labels, f_val[kind], f_val.labels, ks=ks,
                       temperature=cfg.eval.knn_temperature)
    k = headline_k(ks)
    return {"raw_pixel_knn_top1": raw[k][0], "raw_pixel_knn_top5": raw[k][1],
            "random_init_knn_top1": rnd[k][0], "random_init_knn_top5": rnd[k][1]}


def retrieval_floors(cfg: ExperimentConfig) -> dict[str, float]:
    """Recall@k (``eval.retrieval_k``) of raw pixels and of a random-init teacher backbone on the
    retrieval split (``eval.retrieval_path``, else data.val_path; each image queries the others),
    the protocol of the ``retrieval`` task: ``{"raw_pixel_retrieval_r1": %, ..., "random_init_retrieval_r1": %, ...}``."""
    from attmask_ray.eval.retrieval import recall_at_k
    from attmask_ray.models import build_model

    path = cfg.eval.retrieval_path or cfg.data.val_path
    ks = cfg.eval.retrieval_k
    x, y = _pixels(path, cfg)
    out = {f"raw_pixel_retrieval_r{k}": v for k, v in recall_at_k(x, y, ks=ks).items()}
    torch.manual_seed(cfg.seed)
    backbone = build_model(cfg.model, cfg.data.global_crop_size, student=False).backbone.eval()
    kind = cfg.eval.knn_feature
    f = extract_features(backbone, default_loader(path, cfg.data, cfg.eval.batch_size), (kind,), name="retrieval")
    out |= {f"random_init_retrieval_r{k}": v for k, v in recall_at_k(f[kind], f.labels, ks=ks).items()}
    return out
