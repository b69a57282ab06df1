"""The one registry of evaluation tasks: name -> :class:`EvalTask` (its function and the feature
kinds it reads from each split).

A task is a function ``(EvalSpec, train Features, val Features) -> {metric: value}`` in its own
module (knn.py, fewshot.py, linear.py, masked.py, retrieval.py, in9.py, finetune.py); adding one is that module plus one entry
in :data:`TASKS`. The runner (:mod:`attmask_ray.eval.runner`) extracts the union of the kinds
the requested tasks need once per split and hands the same Features to every task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from attmask_ray.config import EvalConfig
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features
from attmask_ray.eval.fewshot import fewshot_task
from attmask_ray.eval.finetune import finetune_task
from attmask_ray.eval.in9 import in9_task
from attmask_ray.eval.knn import knn_task
from attmask_ray.eval.linear import linear_task
from attmask_ray.eval.masked import masked_task
from attmask_ray.eval.retrieval import retrieval_task
from attmask_ray.eval.spec import EvalSpec

TaskFn = Callable[[EvalSpec, Features, Features], dict[str, float]]
Kinds = Callable[[EvalConfig], tuple[str, ...]]  # eval config -> feature kinds (attmask_ray.eval.features.KINDS)


@dataclass(frozen=True)
class EvalTask:
    """One entry of :data:`TASKS`."""

    name: str
    run: TaskFn
    train_kinds: Kinds  # features it reads from the train split (the k-NN bank)
    val_kinds: Kinds  # features it reads from the val split (the task may also run the backbone itself)


def _knn_feature(e: EvalConfig) -> tuple[str, ...]:
    return (e.knn_feature,)


def _nothing(e: EvalConfig) -> tuple[str, ...]:
    return ()


def _retrieval_val(e: EvalConfig) -> tuple[str, ...]:
    return (e.knn_feature,) if e.retrieval_path is None else ()  # else it extracts eval.retrieval_path itself


def _cls4(e: EvalConfig) -> tuple[str, ...]:
    return ("cls4",)


def _cls4_if_fast(e: EvalConfig) -> tuple[str, ...]:
    return ("cls4",) if e.linear_mode == "fast" else ()  # full mode trains on augmented views instead


TASKS: dict[str, EvalTask] = {t.name: t for t in (
    EvalTask("knn", knn_task, train_kinds=_knn_feature, val_kinds=_knn_feature),
    EvalTask("fewshot", fewshot_task, train_kinds=_knn_feature, val_kinds=_knn_feature),
    EvalTask("linear", linear_task, train_kinds=_cls4_if_fast, val_kinds=_cls4),
    EvalTask("masked", masked_task, train_kinds=_knn_feature, val_kinds=_nothing),  # masks and extracts val itself
    EvalTask("retrieval", retrieval_task, train_kinds=_nothing, val_kinds=_retrieval_val),
    EvalTask("in9", in9_task, train_kinds=_nothing, val_kinds=_nothing),  # extracts eval.in9_root's splits itself
    EvalTask("finetune", finetune_task, train_kinds=_nothing, val_kinds=_nothing),  # trains the backbone on images
)}


def parse_tasks(tasks: str | Sequence[str]) -> tuple[str, ...]:
    """'knn,fewshot' or ['knn'] -> validated tuple; unknown names raise EvalError."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    bad = [t for t in names if t not in TASKS]
    if bad or not names:
        raise EvalError(f"unknown evaluation task(s) {bad or names}; choose from {', '.join(TASKS)}")
    return tuple(dict.fromkeys(names))


def needed_kinds(tasks: Sequence[str], eval_cfg: EvalConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train kinds, val kinds) of features the tasks need, each kind once, in registry order."""
    chosen = [TASKS[name] for name in TASKS if name in tasks]
    train = dict.fromkeys(k for t in chosen for k in t.train_kinds(eval_cfg))
    val = dict.fromkeys(k for t in chosen for k in t.val_kinds(eval_cfg))
    return tuple(train), tuple(val)
