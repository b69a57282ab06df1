"""One Tune trial = a driver function that builds and fits a TorchTrainer (Ray Train V2).

The trial's sampled knobs (dotted config keys, the trial's whole ``config``) are applied to the
sweep's base config (:class:`TrialSetup`, passed with ``tune.with_parameters``); the
TorchTrainer is named after the trial, so a restored sweep resumes each unfinished trial from
its last checkpoint. After training, optional evaluation tasks run on the final checkpoint
and their metrics are reported as one more Tune result (source "final_eval").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attmask_ray.config import ExperimentConfig, apply_overrides, from_dict, to_dict
from attmask_ray.sweep.space import knob_values


class TrialStopped(RuntimeError):
    """Training stopped itself (e.g. a non-finite loss); the message says why and what to do."""


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of one sweep shares (never part of the sampled params)."""

    base: dict[str, Any]  # the base config as a nested dict, relative data paths made absolute
    storage: str  # "<storage>/<name>": where each trial's TorchTrainer runs and checkpoints go
    eval_tasks: tuple[str, ...] = ()  # evaluation tasks on the final checkpoint
    objective_over: dict[str, list[Any]] = field(default_factory=dict)  # {knob: [values]}: one run per value


def trial_config(base: dict[str, Any], sampled: dict[str, Any]) -> ExperimentConfig:
    """Base config (nested dict) + sampled knobs {"mask.strategy": ..., "seed": ...}."""
    return apply_overrides(from_dict(base), knob_values(sampled))


def attmask_trial(params: dict[str, Any], setup: TrialSetup) -> None:
    """The Tune trainable (its name names the trial folders, ``attmask_trial_<id>_...``).

    ``params``: the sampled knobs; with ``setup.objective_over`` the trial trains one run per
    value (:mod:`attmask_ray.sweep.objective`) and reports their mean.
    """
    import ray
    import ray.tune

    cfg = trial_config(setup.base, params)
    trial_name = ray.tune.get_context().get_trial_name()
    members = objective_members(setup.objective_over)
    if not members:
        result = _fit(cfg, f"{trial_name}_train", trial_name, setup.storage, None)
        _finish(cfg, result, trial_name, setup.eval_tasks)
        return
    from attmask_ray.sweep.objective import ObjectiveHistory

    history = ObjectiveHistory.options(num_cpus=0).remote()
    labels = [label for label, _ in members]
    knob = next(iter(setup.objective_over))
    for label, overrides in members:
        member_cfg = apply_overrides(cfg, overrides)
        result = _fit(member_cfg, f"{trial_name}_train_{label}", f"{trial_name}/{label}", setup.storage,
                      (history, label, labels, knob))
        last = label == labels[-1]
        _finish(member_cfg, result, trial_name, setup.eval_tasks, member=(label, knob),
                objective=ray.get(history.last_mean.remote()) if last else None)


def objective_members(over: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """{knob: [v1, v2]} -> [(label, {knob: v1}), ...]: the runs whose mean is the trial's metric."""
    if not over:
        return []
    if len(over) != 1:
        raise ValueError(f"objective_over takes one knob, got {list(over)}")
    (knob, values), = over.items()
    return [(str(v), knob_values({knob: v})) for v in values]


def _fit(cfg: ExperimentConfig, run_name: str, trial_label: str, storage: str, member: tuple | None) -> Any:
    """Fit one TorchTrainer for ``cfg``; reports go to Tune (directly, or through the objective
    callback when this run is one member of a mean objective)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from attmask_ray.train.loop import train_loop_per_worker

    if member is None:
        callback = TuneReportCallback()
    else:
        from attmask_ray.sweep.objective import MemberReportCallback

        callback = MemberReportCallback(*member)
    s = cfg.scaling
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"experiment": to_dict(cfg), "trial": trial_label},
        scaling_config=ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu,
                                     resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}),
        run_config=RunConfig(
            name=run_name, storage_path=storage, callbacks=[callback],
            failure_config=FailureConfig(max_failures=s.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=s.num_to_keep),
        ),
    )
    return trainer.fit()


def _finish(cfg: ExperimentConfig, result: Any, trial_name: str, eval_tasks: tuple[str, ...],
            member: tuple[str, str] | None = None, objective: dict[str, float] | None = None) -> None:
    """Stop on a training stop reason; run the sweep's evaluation tasks on the final checkpoint.

    For a member run (mean objective), the final-evaluation row carries the member's label,
    its own k-NN as ``member_*`` and, for the last member, the mean ``objective``.
    """
    import ray.tune

    final = result.metrics or {}
    if final.get("stop_reason"):
        raise TrialStopped(f"trial {trial_name} stopped: {final['stop_reason']}")
    tasks = tuple(eval_tasks)
    if tasks and result.checkpoint is not None:
        from attmask_ray.eval.runner import run_evaluations

        try:
            with result.checkpoint.as_directory() as d:
                metrics = run_evaluations(d, tasks, eval_cfg=cfg.eval)
        except Exception as exc:  # noqa: BLE001 - training succeeded; keep its result, say what failed
            message = f"evaluation {','.join(tasks)} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            print(f"[attmask_ray] trial {trial_name}: {message}; rerun with python -m attmask_ray.evaluate "
                  f"{result.checkpoint.path} --tasks {','.join(tasks)}", flush=True)
            metrics = {}
            final = {**final, "eval_error": message}
        row = {k: v for k, v in final.items() if isinstance(v, (int, float, str))}
        if member is not None:  # the final-evaluation row belongs to this member; the mean comes from all
            from attmask_ray.sweep.objective import member_row

            row = member_row(row, *member, objective)
        ray.tune.report({**row, **{f"eval/{k}": v for k, v in metrics.items()}, "source": "final_eval",
                         "checkpoint_path": result.checkpoint.path})
