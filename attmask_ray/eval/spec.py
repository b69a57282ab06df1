"""What every evaluation task receives: :class:`EvalSpec` (checkpoint, splits, eval config, loader
factory), small and picklable so each Ray task rebuilds its inputs from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch

from attmask_ray.checkpoint import Checkpoint, load_checkpoint
from attmask_ray.config import EvalConfig, ExperimentConfig
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features
from attmask_ray.eval.loaders import LoaderFactory, default_loader


@dataclass(frozen=True)
class EvalSpec:
    """What every task needs to rebuild its inputs (small, picklable)."""

    checkpoint: str
    train_path: str
    val_path: str
    eval_cfg: EvalConfig
    which: str = "teacher"
    attn_checkpoint: str | None = None
    loader_factory: LoaderFactory = field(default=default_loader)
    num_classes: int | None = None  # from the dataset manifest when known, else from the train labels

    def load(self) -> Checkpoint:
        return load_checkpoint(self.checkpoint)

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.eval_cfg.num_gpus > 0 and torch.cuda.is_available() else "cpu")

    def batches(self, cfg: ExperimentConfig, split: str) -> Iterable[Sequence[torch.Tensor]]:
        """The ``split`` ("train" or "val") as eval batches ``(images [B, 3, G, G], labels [B], ...)``."""
        path = self.train_path if split == "train" else self.val_path
        return self.loader_factory(path, cfg.data, self.eval_cfg.batch_size, device=str(self.device))


def num_classes_of(train: Features, val: Features, known: int | None = None) -> int:
    """Class count (the manifest's, else from the train labels); val labels outside it raise."""
    n = known if known is not None else int(train.labels.max()) + 1
    if len(val) and int(val.labels.max()) >= n:
        raise EvalError(f"validation labels reach {int(val.labels.max())} but the train split has only {n} classes: "
                        "train and val must be converted with the same class list")
    return n
