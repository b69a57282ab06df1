"""Data layer: shard validation, the FFCV multi-crop training loader, the eval loader and the
linear-probe loader.

``DataError``, ``DatasetInfo`` and ``check_dataset`` import cheaply (no FFCV, no numba), so
the sweep driver can validate data before any cluster starts; the loaders load on first use.
``DataError`` and the manifest format live in data_prep (this layer reads what data_prep
writes; data_prep never imports from here).
"""

from __future__ import annotations

import importlib
from typing import Any

from attmask_ray.data.dataset import DatasetInfo, check_dataset
from data_prep.errors import DataError

_LAZY = {"TrainLoader": "train_loader", "build_train_loader": "train_loader",
         "EvalLoader": "eval_loader", "build_eval_loader": "eval_loader",
         "LinearProbeLoader": "linear_probe"}

__all__ = ["DataError", "DatasetInfo", "check_dataset", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"attmask_ray.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'attmask_ray.data' has no attribute {name!r}")
