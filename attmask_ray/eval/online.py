"""The online k-NN of training: the teacher backbone's features of the k-NN bank (data.knn_train_path
or data.train_path) against data.val_path, with the same protocol as the final ``knn`` task."""

from __future__ import annotations

from typing import Any

import torch

from attmask_ray.config import ExperimentConfig
from attmask_ray.diagnostics import ForegroundShare, mean_pairwise_cosine
from attmask_ray.eval.features import extract_features
from attmask_ray.eval.knn import knn_classify
from attmask_ray.metrics import knn_metrics
from attmask_ray.models import MaskedViT


class OnlineKnn:
    """k-NN of a backbone during training; make one per Train worker.

    The FFCV eval loaders of the bank and val splits are built on first use and kept by this
    object (each build pays FFCV's JIT compile), so every later evaluation reuses them.
    """

    def __init__(self, cfg: ExperimentConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self._loaders: dict[str, Any] = {}

    def _loader(self, path: str) -> Any:
        if path not in self._loaders:
            from attmask_ray.data import build_eval_loader

            self._loaders[path] = build_eval_loader(path, self.cfg.data, self.cfg.eval.batch_size, device=self.device)
        return self._loaders[path]

    def __call__(self, backbone: MaskedViT) -> dict[str, float]:
        """The k-NN metrics (:func:`attmask_ray.metrics.knn_metrics`) of ``backbone`` (the teacher's).

        Also reports ``val_mean_cosine`` (mean pairwise cosine of the val features) and, when
        ``eval.foreground_threshold`` is set, ``fg_attention_share`` (mean per image share of the
        block-``attn_layer`` [CLS] attention on foreground patches of the val centre views) and
        ``fg_patch_frac`` (mean foreground patch fraction: the chance level).
        """
        cfg = self.cfg
        kind = cfg.eval.knn_feature
        bank_path = cfg.data.knn_train_path or cfg.data.train_path
        train = extract_features(backbone, self._loader(bank_path), (kind,), device=self.device, name="k-NN train")
        fg = None
        if cfg.eval.foreground_threshold is not None:
            fg = ForegroundShare(cfg.data.mean, cfg.data.std, backbone.patch_size, cfg.eval.foreground_threshold)
        val = extract_features(backbone, self._loader(cfg.data.val_path), (kind,), device=self.device,
                               name="k-NN val", with_attn=fg is not None, attn_layer=cfg.attn_layer, on_batch=fg)
        res = knn_classify(train[kind], train.labels, val[kind], val.labels, ks=cfg.eval.knn_k,
                           temperature=cfg.eval.knn_temperature, chunk=cfg.eval.knn_chunk)
        out = knn_metrics(res)
        out["val_mean_cosine"] = float(mean_pairwise_cosine(val[kind]))
        if fg is not None:
            out.update(fg.read())
        return out
