"""Tiny config and in-memory toy splits shared by the eval tests."""

from __future__ import annotations

import torch

from attmask_ray.config import from_dict
from tests.conftest import TINY_MODEL

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny_config(**eval_overrides):
    return from_dict({
        "name": "tiny_eval", "model": TINY_MODEL,
        "data": {"global_crop_size": 28, "local_crop_size": 12, "eval_resize": 32, "local_crops_number": 2,
                 "train_path": "train", "val_path": "val"},
        "optim": {"batch_size": 8, "epochs": 2, "warmup_epochs": 0},
        "eval": {"batch_size": 16, "knn_k": [1, 10, 20], "fewshot_nu": [1, 5], "fewshot_tries": 3,
                 "linear_epochs": 3, "masked_ratios": [0.0, 0.3], "in9_root": "in9", "finetune_epochs": 1,
                 "finetune_batch_size": 8, "finetune_warmup_epochs": 0, **eval_overrides},
    })


def toy_split(n_per_class: int, seed: int, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class is a bright quadrant (easy for any features), normalised."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    pixels = 0.2 * torch.rand(len(labels), 3, 28, 28, generator=g)
    for i, c in enumerate(labels.tolist()):
        r, col = divmod(c, 2)
        pixels[i, :, r * 14:(r + 1) * 14, col * 14:(col + 1) * 14] += 0.8
    images = (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return images, labels
