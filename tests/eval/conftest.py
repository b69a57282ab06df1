"""Eval fixtures: a tiny checkpoint and in-memory splits (the Ray cluster fixture is tests/conftest.py)."""

from __future__ import annotations

import functools

import pytest

from attmask_ray.checkpoint import save_checkpoint
from attmask_ray.config import EvalConfig
from attmask_ray.eval.in_memory import tensor_loader
from attmask_ray.train.state import TrainingState

from tests.eval.toy import tiny_config, toy_split


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    cfg = tiny_config()
    state = TrainingState.build(cfg, steps_per_epoch=1)
    directory = tmp_path_factory.mktemp("ckpt") / "checkpoint_000000"
    save_checkpoint(directory, state.state_dict(), cfg, metrics={"epoch": 0})
    return directory


@pytest.fixture(scope="session")
def toy_loader():
    from data_prep.in9 import TRAIN, VARIANTS

    in9 = {f"in9/{name}": toy_split(4, 2) for name in (TRAIN,) + VARIANTS}  # eval.in9_root = "in9" (tiny_config)
    return functools.partial(tensor_loader, datasets={"train": toy_split(12, 0), "val": toy_split(5, 1), **in9})


@pytest.fixture
def eval_cfg() -> EvalConfig:
    return tiny_config().eval
