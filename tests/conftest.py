"""Shared fixtures: tiny configs that run fast on 2 CPU cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from attmask_ray.config import ModelConfig

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
torch.set_num_threads(2)

TINY_MODEL = dict(arch="vit_tiny_patch16_224", patch_size=4, depth=3, embed_dim=48, num_heads=3,
                  out_dim=64, patch_out_dim=64, head_hidden_dim=32, head_bottleneck_dim=16)


@pytest.fixture
def tiny_model_cfg() -> ModelConfig:
    """A 3-block, 48-wide ViT with patch 4 (28x28 -> 7x7 grid) and a 64-way head."""
    return ModelConfig(**TINY_MODEL)


@pytest.fixture(scope="session")
def ray_cluster():
    """The one local Ray cluster of the test session (4 logical CPUs: trial drivers + workers).

    Started on first use and shut down at the end; only this cluster is stopped, never
    another one on the machine. ``address="local"``: never attach to a cluster recorded in
    /tmp/ray/ray_current_cluster by an earlier test's driver or a ``ray start`` (Ray would then
    refuse num_cpus).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        from attmask_ray.ray_session import local_runtime_env

        env = local_runtime_env(None)  # the sweep's own isolation: no State API of another cluster
        env["env_vars"]["RAY_AUTH_MODE"] = "disabled"
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, runtime_env=env)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def photo_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SRC/train: 3 classes x 8 real photo crops (120x160 and 160x120) + corrupt, truncated, CMYK,
    gray, PNG-as-JPEG files in the first class; SRC/val: 3 x 3."""
    from data_prep.sample_photos import make_photo_folder

    src = tmp_path_factory.mktemp("photos")
    make_photo_folder(src / "train", per_class=8, classes=3, size=(120, 160), bad_files=True)
    make_photo_folder(src / "val", per_class=3, classes=3, size=(120, 160), seed=1)
    return src


@pytest.fixture(scope="session")
def photo_shards(photo_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photo_src converted: OUT/train (2 JPEG shards, max side 96) and OUT/val."""
    from data_prep.imagefolder import convert
    from data_prep.shard_writer import WriteOptions

    out = tmp_path_factory.mktemp("photo_shards")
    convert(photo_src, out, WriteOptions(num_shards=2, max_resolution=96))
    return out


@pytest.fixture(scope="session")
def embedded_root(tmp_path_factory):
    """Fashion-MNIST shards for Ray tests: train = first 30 per class (300), test = 10,000."""
    from data_prep.fashion_mnist import build

    out = tmp_path_factory.mktemp("fashion_300")
    build(out, train_subset=300)
    return out


def tiny_experiment(root, **over):
    """A 3-block ViT on 28x28 Fashion-MNIST shards under ``root``; ``over`` = dotted overrides."""
    from attmask_ray.config import apply_overrides
    from attmask_ray.presets import embedded

    cfg = embedded("test", root=str(root), epochs=2, batch_size=32, width=48, depth=3, heads=3, out_dim=64,
                   local_crops=2, eval_every=1)
    base = {"eval.batch_size": 1024, "eval.knn_k": (10, 20), "scaling.log_every": 2,
            "model.patch_size": 4, "data.local_crop_size": 12}  # 7x7 / 3x3 grids, as the tests expect
    return apply_overrides(cfg, {**base, **over})
