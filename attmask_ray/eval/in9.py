"""Background robustness (paper Table 4, ImageNet-9 of Xiao et al., "Noise or Signal"): a linear
probe on frozen features, trained on the Original images, tested on every variant.

``eval.in9_root`` is a folder made by ``python -m data_prep.in9`` (the public ``bg_challenge``
download) or ``python -m data_prep.fashion_in9`` (the small-scale analogue): ``train/`` (Original
train) and one shards folder per variant in :data:`VARIANTS` (their val images), all with the
same 9 (or N) classes. The probe is the ``linear`` task's fast mode (:func:`~attmask_ray.eval.linear.fit_linear`
on the concatenated [CLS] of the last 4 blocks, ``eval.linear_*``); its classifier after the last
epoch is scored on every variant. Reported: ``in9_<variant>`` top-1 % for each variant and ``in9_bg_gap`` = Mixed-Same -
Mixed-Rand (the paper's BG-Gap: how much the background of the right class helps).
"""

from __future__ import annotations

from pathlib import Path

import torch

from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, extract_features
from attmask_ray.eval.linear import accuracy, fit_linear, make_linear, shuffled_batches
from attmask_ray.eval.spec import EvalSpec
from data_prep.in9 import TRAIN, VARIANTS


def in9_paths(root: str | Path) -> dict[str, str]:
    """{"train": root/train, variant: root/variant, ...} (strings, as the loaders take them)."""
    return {name: str(Path(root) / name) for name in (TRAIN,) + VARIANTS}


def check_in9_root(root: str | None) -> int:
    """Validate every split of an in9 root before any task starts; returns the class count."""
    from attmask_ray.data import check_dataset

    if root is None:
        raise EvalError("the in9 task needs eval.in9_root: a folder made by python -m data_prep.in9 (or "
                        "data_prep.fashion_in9); pass --set eval.in9_root=PATH")
    if not Path(root).is_dir():
        raise EvalError(f"eval.in9_root {root} does not exist; build it with python -m data_prep.in9 SRC {root}")
    paths = in9_paths(root)
    for name, path in paths.items():
        if not Path(path).is_dir():
            raise EvalError(f"eval.in9_root {root} lacks the {name}/ split; re-run python -m data_prep.in9 into it "
                            f"(needs {', '.join((TRAIN,) + VARIANTS)})")
    counts = {name: check_dataset(path).num_classes for name, path in paths.items()}
    if len(set(counts.values())) > 1:
        raise EvalError(f"eval.in9_root {root}: the splits disagree on the class count ({counts}); "
                        "convert every variant with the same class list")
    return counts[TRAIN]


def in9_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    """The ``in9`` evaluation task (its own splits under ``eval.in9_root``; the spec's train/val
    features are not used)."""
    e = spec.eval_cfg
    if e.in9_root is None:
        raise EvalError("the in9 task needs eval.in9_root (pass --set eval.in9_root=PATH)")
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)
    paths = in9_paths(e.in9_root)

    def feats(name: str) -> Features:
        batches = spec.loader_factory(paths[name], ckpt.config.data, e.batch_size, device=str(spec.device))
        return extract_features(backbone, batches, ("cls4",), spec.device, name=f"in9 {name}")

    tr = feats(TRAIN)
    if len(tr) == 0:
        raise EvalError(f"in9: {paths[TRAIN]} holds no images")
    n = int(tr.labels.max()) + 1  # its own classes (spec.num_classes is the main dataset's)
    torch.manual_seed(ckpt.config.seed)
    layer = make_linear(tr["cls4"].shape[1], n).to(spec.device)
    fit_linear(layer, e.linear_epochs, e.linear_lr, e.linear_batch_size,
               shuffled_batches(tr["cls4"], tr.labels, e.linear_batch_size, ckpt.config.seed))
    out = {}
    for name in VARIANTS:
        v = feats(name)
        if int(v.labels.max()) >= n:
            raise EvalError(f"in9: {paths[name]} has labels up to {int(v.labels.max())} but train has {n} classes")
        out[f"in9_{name}"] = accuracy(layer, v["cls4"], v.labels)[0]
    out["in9_bg_gap"] = out["in9_mixed_same"] - out["in9_mixed_rand"]
    return out
