"""Decode-once FFCV decoders: the per-batch thread plan and multi-threaded decoding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

from attmask_ray.config import DataConfig
from attmask_ray.data import build_eval_loader, build_train_loader
from attmask_ray.data import multicrop
from attmask_ray.data.multicrop import MultiCropDecoder, thread_plan

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CFG = DataConfig(global_crop_size=64, local_crop_size=32, local_crops_number=3, eval_resize=80, num_workers=1)


def _loads(cost: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.array([cost[order[a:b]].sum() for a, b in zip(starts[:-1], starts[1:])])


@pytest.mark.parametrize("jit", [False, True])
def test_thread_plan_is_a_balanced_partition(jit: bool) -> None:
    plan = numba.njit(thread_plan) if jit else thread_plan
    rng = np.random.default_rng(0)
    for n, threads in ((128, 8), (100, 7), (5, 8), (1, 4), (64, 1)):
        cost = rng.integers(20_000, 200_000, n)  # photo-like encoded sizes
        order, starts = plan(cost, threads)
        t = min(threads, n)
        assert len(starts) == t + 1 and starts[0] == 0 and starts[-1] == n and (np.diff(starts) >= 0).all()
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
        loads = _loads(cost, order, starts)
        assert loads.max() <= cost.sum() / t + cost.max()  # greedy longest-first bound
        for a, b in zip(starts[:-1], starts[1:]):  # batch order kept inside each thread's run
            assert (np.diff(order[a:b]) > 0).all()
    order, starts = plan(np.zeros(0, np.int64), 4)
    assert len(order) == 0 and list(starts) == [0, 0]


def test_thread_plan_beats_equal_count_split_on_skewed_batches() -> None:
    """8 large images first in a batch of 128: an equal-count split gives them all to thread 0."""
    cost = np.array([400_000] * 8 + [40_000] * 120, np.int64)
    order, starts = thread_plan(cost, 8)
    balanced = _loads(cost, order, starts).max()
    equal_split = max(c.sum() for c in np.array_split(cost, 8))
    assert balanced <= cost.sum() / 8 * 1.05
    assert equal_split > 2.5 * balanced


def test_threaded_decoding_matches_one_thread(photo_shards: Path) -> None:
    """The planned per-thread runs write every sample to its own batch slot: 1 vs 2 threads identical."""
    val, train = str(photo_shards / "val"), str(photo_shards / "train")
    ev = {w: torch.cat([x for x, _, _ in build_eval_loader(val, replace(CFG, num_workers=w), batch_size=5)])
          for w in (1, 2)}
    assert torch.equal(ev[1], ev[2])
    slots = {}
    for w in (1, 2):
        loader = build_train_loader(replace(CFG, num_workers=w), 6, path=train, crops_on="device")
        hmax, wmax = loader._slots[0]
        out = []
        for rows, _, sizes in loader.raw_batches():
            images = rows.view(-1, hmax, wmax, 3)
            out += [images[k, :int(h), :int(wd)].clone() for k, (h, wd) in enumerate(sizes.tolist())]
        slots[w] = out
    assert len(slots[1]) == len(slots[2]) > 0
    assert all(torch.equal(a, b) for a, b in zip(slots[1], slots[2]))


def test_shard_loaders_share_one_compiled_batch_loop(photo_shards: Path) -> None:
    """One FFCV Loader per shard, one numba compile of the decode loop per decoder configuration."""
    cfg = replace(CFG, local_crops_number=2, global_crop_size=48)  # a configuration no other test compiles
    loader = build_train_loader(cfg, 4, path=str(photo_shards / "train"), crops_on="host")
    assert sum(ld is not None for ld in loader.loaders) == 2
    n = sum(x[0].shape[0] for x, _ in loader)
    assert n == len(loader) * 4
    keys = [k for k in multicrop._BATCH_LOOPS if k[0] is MultiCropDecoder and k[1][:3] == (48, 32, 2)]
    assert len(keys) == 1
    assert len(multicrop._BATCH_LOOPS[keys[0]].signatures) == 1
