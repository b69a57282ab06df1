"""Evaluations of one checkpoint as Ray tasks, sharing one feature extraction.

Flow of :func:`run_evaluations`:
  1. two ``extract`` tasks (train, val) run the frozen backbone ONCE per split, for the
     union of the feature kinds the requested tasks need; their results live in the
     object store;
  2. one task per evaluation (knn, fewshot, linear, masked) receives those object refs
     (Ray resolves them to the same stored Features, no re-extraction); ``masked`` and
     linear ``full`` mode also run the backbone on (modified) images themselves;
  3. metrics are merged and one results row per task is appended to
     ``<out_dir>/results.parquet``.
Every task asks for ``EvalConfig.num_cpus`` / ``num_gpus``. ``local=True`` runs the same
functions in-process without Ray (tests, debugging).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from attmask_ray.config import EvalConfig, ExperimentConfig
from attmask_ray.eval.features import EvalError, Features, default_loader, extract_features
from attmask_ray.eval.fewshot import fewshot_knn
from attmask_ray.eval.knn import check_bank, knn_classify
from attmask_ray.eval.linear import train_linear, train_linear_augmented
from attmask_ray.eval.masked import masked_robustness, masked_val_features
from attmask_ray.output_paths import output_problem
from attmask_ray.ray_session import unreachable
from attmask_ray.results import FILENAME, append_results, config_columns, read_results
from attmask_ray.train.checkpoint import Checkpoint, load_checkpoint

TASKS = ("knn", "fewshot", "linear", "masked")
HEADLINE_K = 20  # the paper's k-NN figure

LoaderFactory = Callable[..., Iterable[Sequence[torch.Tensor]]]


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
        path = self.train_path if split == "train" else self.val_path
        return self.loader_factory(path, cfg.data, self.eval_cfg.batch_size, device=str(self.device))


def parse_tasks(tasks: str | Sequence[str]) -> tuple[str, ...]:
    """'knn,fewshot' or ['knn'] -> validated tuple; unknown names raise EvalError."""
    names = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
    bad = [t for t in names if t not in TASKS]
    if bad or not names:
        raise EvalError(f"unknown evaluation task(s) {bad or names}; choose from {', '.join(TASKS)}")
    return tuple(dict.fromkeys(names))


def needed_kinds(tasks: Sequence[str], eval_cfg: EvalConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train kinds, val kinds) of features the tasks need."""
    train: list[str] = []
    val: list[str] = []
    if {"knn", "fewshot", "masked"} & set(tasks):
        train.append(eval_cfg.knn_feature)
    if {"knn", "fewshot"} & set(tasks):
        val.append(eval_cfg.knn_feature)
    if "linear" in tasks:
        val.append("cls4")
        if eval_cfg.linear_mode == "fast":
            train.append("cls4")
    return tuple(train), tuple(val)


def extract_split(spec: EvalSpec, split: str, kinds: Sequence[str]) -> Features:
    """Features of one split with the checkpoint's backbone (``spec.which``)."""
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)
    feats = extract_features(backbone, spec.batches(ckpt.config, split), kinds, spec.device, name=split)
    feats.meta["split"] = split
    return feats


def num_classes_of(train: Features, val: Features, known: int | None = None) -> int:
    """Class count (the manifest's, else from the train labels); val labels outside it raise."""
    n = known if known is not None else int(train.labels.max()) + 1
    if len(val) and int(val.labels.max()) >= n:
        raise EvalError(f"validation labels reach {int(val.labels.max())} but the train split has only {n} classes: "
                        "train and val must be converted with the same class list")
    return n


def knn_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    e = spec.eval_cfg
    kind = e.knn_feature
    num_classes = num_classes_of(train, val, spec.num_classes)
    check_bank(e.knn_k, len(train), spec.train_path)  # on real datasets already checked before any work
    res = knn_classify(train[kind], train.labels, val[kind], val.labels, ks=e.knn_k, temperature=e.knn_temperature,
                       num_classes=num_classes, chunk=e.knn_chunk, device=spec.device)
    out = {f"knn_k{k}_top1": t1 for k, (t1, _) in res.items()} | {f"knn_k{k}_top5": t5 for k, (_, t5) in res.items()}
    head = HEADLINE_K if HEADLINE_K in res else e.knn_k[0]
    out["knn_top1"], out["knn_top5"] = res[head]
    return out


def fewshot_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    e = spec.eval_cfg
    kind = e.knn_feature
    return fewshot_knn(train[kind], train.labels, val[kind], val.labels, nus=e.fewshot_nu, tries=e.fewshot_tries,
                       temperature=e.knn_temperature, num_classes=num_classes_of(train, val, spec.num_classes),
                       seed=spec.load().config.seed, chunk=e.knn_chunk)


def linear_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    e = spec.eval_cfg
    ckpt = spec.load()
    if spec.num_classes is not None or len(train):
        n = num_classes_of(train, val, spec.num_classes)
    else:  # full mode without any train features: classes seen in val
        n = int(val.labels.max()) + 1
    if e.linear_mode == "fast":
        return train_linear(train["cls4"], train.labels, val["cls4"], val.labels, n, epochs=e.linear_epochs,
                            lr=e.linear_lr, batch_size=e.linear_batch_size, seed=ckpt.config.seed, device=spec.device)
    backbone = ckpt.backbone(spec.which, spec.device)
    views = spec.loader_factory(spec.train_path, ckpt.config.data, e.linear_batch_size, device=str(spec.device),
                                augment=True)
    return train_linear_augmented(backbone, views, val["cls4"], val.labels, n, epochs=e.linear_epochs, lr=e.linear_lr,
                                  batch_size=e.linear_batch_size, seed=ckpt.config.seed, device=spec.device)


def masked_task(spec: EvalSpec, train: Features, val: Features) -> dict[str, float]:
    e = spec.eval_cfg
    ckpt = spec.load()
    backbone = ckpt.backbone(spec.which, spec.device)
    if spec.attn_checkpoint is None:
        attn_backbone = backbone if spec.which == "teacher" else ckpt.backbone("teacher", spec.device)
    else:
        attn_backbone = load_checkpoint(spec.attn_checkpoint).backbone("teacher", spec.device)
    ratios = tuple(sorted(set(e.masked_ratios) | {0.0}))
    feats, labels = masked_val_features(backbone, spec.batches(ckpt.config, "val"), ratios, ckpt.config.data.mean,
                                        ckpt.config.data.std, kind=e.knn_feature, attn_backbone=attn_backbone,
                                        device=spec.device)
    n = spec.num_classes if spec.num_classes is not None else int(train.labels.max()) + 1
    if int(labels.max()) >= n:
        raise EvalError(f"validation labels reach {int(labels.max())} but the train split has only {n} classes")
    return masked_robustness(feats, labels, train[e.knn_feature], train.labels, k=HEADLINE_K,
                             temperature=e.knn_temperature, num_classes=n, device=spec.device)


TASK_FNS: dict[str, Callable[[EvalSpec, Features, Features], dict[str, float]]] = {
    "knn": knn_task, "fewshot": fewshot_task, "linear": linear_task, "masked": masked_task}


def _empty() -> Features:
    return Features({}, torch.zeros(0, dtype=torch.long))


def _check_same_grid(cfg: ExperimentConfig, attn_cfg: ExperimentConfig, attn_path: str | Path) -> None:
    """The masked task hides patches by another teacher's attention: both need one patch grid."""
    p, q = cfg.model.patch_size, attn_cfg.model.patch_size
    g = cfg.data.global_crop_size
    if p != q:
        raise EvalError(f"--attn-checkpoint {attn_path} has patch {q} ({g // q}x{g // q} grid at {g} px) but the "
                        f"evaluated checkpoint has patch {p} ({g // p}x{g // p}); pass a checkpoint with the same patch size")


def _check_datasets(train_path: str, val_path: str, knn_k: Sequence[int] = ()) -> int:
    """Class-count and k-NN bank checks on real datasets before any task starts; returns the class count.

    ``knn_k``: the k values of the knn task (none when it is not run); each must fit in the train split.
    """
    from attmask_ray.data import check_dataset

    tr, va = check_dataset(train_path), check_dataset(val_path)
    if tr.num_samples == 0 or va.num_samples == 0:
        raise EvalError(f"empty split: {train_path if tr.num_samples == 0 else val_path} holds no samples")
    if tr.num_classes != va.num_classes:
        raise EvalError(f"class-count mismatch: train {train_path} has {tr.num_classes} classes, val {val_path} has "
                        f"{va.num_classes}; convert both splits with the same class list")
    check_bank(knn_k, tr.num_samples, train_path)
    return int(tr.num_classes)


def run_evaluations(checkpoint_path: str | Path, tasks: str | Sequence[str] = TASKS, train_path: str | None = None,
                    val_path: str | None = None, eval_cfg: EvalConfig | None = None, *, which: str = "teacher",
                    attn_checkpoint: str | None = None, out_dir: str | Path | None = None, trial_id: str = "",
                    address: str | None = None, local: bool = False,
                    loader_factory: LoaderFactory | None = None) -> dict[str, float]:
    """Run the evaluation ``tasks`` on a checkpoint; returns the merged metrics.

    Paths default to the checkpoint config's ``data.knn_train_path`` (else ``train_path``)
    and ``data.val_path``; ``eval_cfg`` to the checkpoint's ``eval`` section. With
    ``out_dir`` one row per task is appended to ``<out_dir>/results.parquet``. Uses the
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
        if (Path(out_dir) / FILENAME).exists():
            read_results(out_dir)
    if attn_checkpoint is not None:  # fail now, not inside a task
        _check_same_grid(cfg, load_checkpoint(attn_checkpoint).config, attn_checkpoint)
    num_classes = (_check_datasets(train_path, val_path, eval_cfg.knn_k if "knn" in names else ())
                   if loader_factory is None else None)
    spec = EvalSpec(str(ckpt.path), train_path, val_path, eval_cfg, which, attn_checkpoint,
                    loader_factory or default_loader, num_classes)
    train_kinds, val_kinds = needed_kinds(names, eval_cfg)
    if local:
        train = extract_split(spec, "train", train_kinds) if train_kinds else _empty()
        val = extract_split(spec, "val", val_kinds) if val_kinds else _empty()
        results = {name: TASK_FNS[name](spec, train, val) for name in names}
    else:
        results = _run_with_ray(spec, names, train_kinds, val_kinds, address)
    if out_dir is not None:
        base = {"trial_id": trial_id, "epoch": int(ckpt.payload.get("metrics", {}).get("epoch", -1)),
                "step": ckpt.step, "checkpoint": str(ckpt.path)} | config_columns(replace(cfg, eval=eval_cfg))
        append_results(out_dir, [base | {"source": name} | metrics for name, metrics in results.items()])
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
        refs = {name: ray.remote(TASK_FNS[name]).options(name=f"eval_{name}", **opts).remote(spec, train_ref, val_ref)
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


def format_metrics(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Metric rows for display: (name, value with 2 decimals)."""
    return [(k, f"{v:.2f}" if isinstance(v, float) else str(v)) for k, v in results.items()]
