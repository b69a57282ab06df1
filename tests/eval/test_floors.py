"""k-NN and retrieval floors (raw pixels, random-init ViT) on real Fashion-MNIST shards."""

from __future__ import annotations

import pytest

from attmask_ray.eval.floors import _pixels, knn_floors, retrieval_floors
from attmask_ray.eval.retrieval import recall_at_k

from tests.conftest import tiny_experiment

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # numba finaliser


def test_floors_beat_chance_and_follow_the_task_protocol(embedded_root):
    cfg = tiny_experiment(embedded_root, **{"eval.retrieval_path": str(embedded_root / "train"),
                                            "eval.retrieval_k": (1, 4)})
    knn = knn_floors(cfg)
    assert 30 < knn["random_init_knn_top1"] < knn["raw_pixel_knn_top1"] <= 100  # 10 classes: chance is 10 %
    rec = retrieval_floors(cfg)
    assert set(rec) == {f"{f}_retrieval_r{k}" for f in ("raw_pixel", "random_init") for k in (1, 4)}
    assert 20 < rec["raw_pixel_retrieval_r1"] <= rec["raw_pixel_retrieval_r4"] <= 100
    assert 20 < rec["random_init_retrieval_r1"] <= rec["random_init_retrieval_r4"] <= 100
    x, y = _pixels(str(embedded_root / "train"), cfg)  # the task's protocol on the same pixels
    assert rec["raw_pixel_retrieval_r1"] == pytest.approx(recall_at_k(x, y, ks=(1,))[1])
