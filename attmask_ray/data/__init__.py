"""Data layer: shard validation, the FFCV multi-crop training loader and the eval loader."""

from attmask_ray.data.dataset import DatasetInfo, check_dataset
from attmask_ray.data.errors import DataError
from attmask_ray.data.eval_loader import EvalLoader, build_eval_loader
from attmask_ray.data.train_loader import TrainLoader, build_train_loader

__all__ = ["DataError", "DatasetInfo", "check_dataset", "TrainLoader", "build_train_loader",
           "EvalLoader", "build_eval_loader"]
