"""Evaluations of one checkpoint as Ray tasks, sharing one feature extraction.

Flow of :func:`run_evaluations`:
  1. two ``extract`` tasks (train, val) run the frozen backbone ONCE per split, for the
     union of the feature kinds the requested tasks need (:func:`~attmask_ray.eval.tasks.needed_kinds`);
     their results live in the object store;
  2. one task per evaluation (the registry :data:`~attmask_ray.eval.tasks.TASKS`) receives those
     object refs (Ray resolves them to the same stored Features, no re-extraction); ``masked`` and
     linear ``full`` mode also run the backbone on (modified) images themselves;
  3. metrics are merged and one results row per task is written to
     ``<out_dir>/results.parquet`` (writer "evaluate", source = the task name).
Every task asks for ``EvalConfig.num_cpus`` / ``num_gpus``. ``local=True`` runs the same
functions in-process without Ray (tests, debugging).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from attmask_ray.checkpoint import load_checkpoint
from attmask_ray.config import EvalConfig, ExperimentConfig
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.features import Features, extract_features
from attmask_ray.eval.in9 import check_in9_root
from attmask_ray.eval.retrieval import check_retrieval
from attmask_ray.eval.knn import check_bank
from attmask_ray.eval.loaders import LoaderFactory, default_loader
from attmask_ray.eval.spec import EvalSpec
from attmask_ray.eval.tasks import TASKS, needed_kinds, parse_tasks
from attmask_ray.output_paths import output_problem
from attmask_ray.ray_session import unreachable
from attmask_ray.results import ResultRow, config_columns, read_results, table_path, write_results


def extract_split(spec: EvalSpec, split: str, kinds: Sequence[str]) -> Features:
    """Features of one split with the checkpoint's backbone (``spec.which``)."""
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)
    feats = extract_features(backbone, spec.batches(ckpt.config, split), kinds, spec.device, name=split)
    feats.meta["split"] = split
    return feats


def _empty() -> Features:
    return Features({}, torch.zeros(0, dtype=torch.long))


def _check_same_grid(cfg: ExperimentConfig, attn_cfg: ExperimentConfig, attn_path: str | Path) -> None:
    """The masked task hides patches by another teacher's attention: both need one patch grid."""
    p, q = cfg.model.patch_size, attn_cfg.model.patch_size
    g = cfg.data.global_crop_size
    if p != q:
        raise EvalError(f"--attn-checkpoint {attn_path} has patch {q} ({g // q}x{g // q} grid at {g} px) but the "
                        f"evaluated checkpoint has patch {p} ({g // p}x{g // p}); pass a checkpoint with the same patch size")


def _check_datasets(train_path: str, val_path: str, knn_k: Sequence[int] = (),
                    retrieval: EvalConfig | None = None) -> int:
    """Class-count, k-NN bank and retrieval gallery checks on real datasets before any task starts;
    returns the class count.

    ``knn_k``: the k values of the knn task (none when it is not run); each must fit in the train split.
    ``retrieval``: the eval config when the retrieval task runs; its k values must fit in its gallery.
    """
    from attmask_ray.data import check_dataset

    tr, va = check_dataset(train_path), check_dataset(val_path)
    if tr.num_samples == 0 or va.num_samples == 0:
        raise EvalError(f"empty split: {train_path if tr.num_samples == 0 else val_path} holds no samples")
    if tr.num_classes != va.num_classes:
        raise EvalError(f"class-count mismatch: train {train_path} has {tr.num_classes} classes, val {val_path} has "
                        f"{va.num_classes}; convert both splits with the same class list")
    check_bank(knn_k, tr.num_samples, train_path)
    if retrieval is not None:
        check_retrieval(retrieval, va.num_samples)
    return int(tr.num_classes)


def run_evaluations(checkpoint_path: str | Path, tasks: str | Sequence[str] = tuple(TASKS), train_path: str | None = None,
                    val_path: str | None = None, eval_cfg: EvalConfig | None = None, *, which: str = "teacher",
                    attn_checkpoint: str | None = None, out_dir: str | Path | None = None, trial_id: str = "",
                    address: str | None = None, local: bool = False,
                    loader_factory: LoaderFactory | None = None) -> dict[str, float]:
    """Run the evaluation ``tasks`` on a checkpoint; returns the merged metrics.

    Paths default to the checkpoint config's ``data.knn_train_path`` (else ``train_path``)
    and ``data.val_path``; ``eval_cfg`` to the checkpoint's ``eval`` section. With
    ``out_dir`` one row per task is added to ``<out_dir>/results.parquet``. Uses the
    running Ray cluster (or starts/joins ``address``); ``local=True`` skips Ray.
    ``loader_factory(path, data_cfg, batch_size, device=...)`` replaces the FFCV eval loader.
    """
    names = parse_tasks(tasks)
    if which not in ("teacher", "student"):
        raise EvalError(f"which must be 'teacher' or 'student', got {which!r}")
    ckpt = load_checkpoint(checkpoint_path)
    cfg = ckpt.config
    eval_cfg = eval_cfg or cfg.eval
    train_path = str(train_path or cfg.data.knn_train_path or cfg.data.train_path)
    val_path = str(val_path or cfg.data.val_path)
    if out_dir is not None:  # refused now, not after the tasks ran
        if problem := output_problem(out_dir, kind="dir"):
            raise EvalError(f"--out {out_dir}: {problem}; pass an experiment folder to append results.parquet to")
        if table_path(out_dir).exists():
            read_results(out_dir)
    if attn_checkpoint is not None:  # fail now, not inside a task
        _check_same_grid(cfg, load_checkpoint(attn_checkpoint).config, attn_checkpoint)
    num_classes = None
    if loader_factory is None:  # real datasets: every split the tasks read is checked before any task starts
        own_data = {"in9"} | ({"retrieval"} if eval_cfg.retrieval_path is not None else set())  # not --train/--val
        if set(names) - own_data:
            num_classes = _check_datasets(train_path, val_path, eval_cfg.knn_k if "knn" in names else (),
                                          eval_cfg if "retrieval" in names else None)
        elif "retrieval" in names:
            check_retrieval(eval_cfg, val_size=0)  # reads eval.retrieval_path only
        if "in9" in names:
            check_in9_root(eval_cfg.in9_root)
    spec = EvalSpec(str(ckpt.path), train_path, val_path, eval_cfg, which, attn_checkpoint,
                    loader_factory or default_loader, num_classes)
    train_kinds, val_kinds = needed_kinds(names, eval_cfg)
    if local:
        train = extract_split(spec, "train", train_kinds) if train_kinds else _empty()
        val = extract_split(spec, "val", val_kinds) if val_kinds else _empty()
        results = {name: TASKS[name].run(spec, train, val) for name in names}
    else:
        results = _run_with_ray(spec, names, train_kinds, val_kinds, address)
    if out_dir is not None:
        epoch = float(int(ckpt.payload.get("metrics", {}).get("epoch", -1)))  # the checkpoint's epoch end (-1: unknown)
        columns = config_columns(replace(cfg, eval=eval_cfg))
        write_results(out_dir, [ResultRow(trial_id, name, "evaluate", epoch, ckpt.step, str(ckpt.path), metrics, columns)
                                for name, metrics in results.items()])
    merged: dict[str, float] = {}
    for metrics in results.values():
        merged.update(metrics)
    return merged


def _run_with_ray(spec: EvalSpec, names: Sequence[str], train_kinds: Sequence[str], val_kinds: Sequence[str],
                  address: str | None) -> dict[str, dict[str, float]]:
    import ray

    started = False
    if not ray.is_initialized():
        if address and (problem := unreachable(address)):
            raise EvalError(f"cannot connect to the Ray cluster: {problem}")
        # no address: a local cluster of our own ("local"), never a recorded or running one by accident
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False)
        started = True
    try:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        # Called from a Tune trial, tasks would be captured by the trial's placement group,
        # which holds only the trial driver's CPU: schedule them on the cluster instead.
        outside = PlacementGroupSchedulingStrategy(placement_group=None)
        opts = {"num_cpus": spec.eval_cfg.num_cpus, "num_gpus": spec.eval_cfg.num_gpus, "max_retries": 0,
                "scheduling_strategy": outside}
        extract = ray.remote(extract_split).options(**opts)
        train_ref = extract.remote(spec, "train", train_kinds) if train_kinds else ray.put(_empty())
        val_ref = extract.remote(spec, "val", val_kinds) if val_kinds else ray.put(_empty())
        refs = {name: ray.remote(TASKS[name].run).options(name=f"eval_{name}", **opts).remote(spec, train_ref, val_ref)
                for name in names}
        try:
            return {name: ray.get(ref) for name, ref in refs.items()}
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ValueError):  # EvalError / DataError / CheckpointError: re-raise the one-liner
                raise EvalError(str(cause)) from None
            raise
    finally:
        if started:
            ray.shutdown()
