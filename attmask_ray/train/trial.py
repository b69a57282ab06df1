"""One Tune trial = a driver function that builds and fits a TorchTrainer (Ray Train V2).

The trial's sampled knobs (dotted config keys) are applied to the sweep's base config;
the TorchTrainer is named after the trial, so a restored sweep resumes each unfinished
trial from its last checkpoint. After training, optional evaluation tasks run on the
final checkpoint and their metrics are reported as one more Tune result.
"""

from __future__ import annotations

from typing import Any

from attmask_ray.config import ExperimentConfig, apply_overrides, from_dict, parse_value, to_dict


class TrialStopped(RuntimeError):
    """Training stopped itself (e.g. a non-finite loss); the message says why and what to do."""


def trial_config(base: dict[str, Any], sampled: dict[str, Any]) -> ExperimentConfig:
    """Base config (nested dict) + sampled knobs {"mask.strategy": ..., "seed": ...}."""
    return apply_overrides(from_dict(base), knob_values(sampled))


def knob_values(sampled: dict[str, Any]) -> dict[str, Any]:
    """Sampled knobs as config values: lists -> tuples, "(0.1, 0.3)"-style strings -> tuples.

    Optuna categorical choices must be scalars, so tuple knobs such as mask.pred_ratio are
    written as strings in search spaces.
    """
    out = {}
    for k, v in sampled.items():
        if k.startswith("_"):
            continue
        if isinstance(v, str) and v.strip().startswith(("(", "[")):
            v = parse_value(v)
        out[k] = tuple(v) if isinstance(v, list) else v
    return out


def run_trial(params: dict[str, Any]) -> None:
    """Tune trainable. ``params`` = sampled knobs + "_base" (nested config), "_storage", "_eval_tasks"."""
    import ray.tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from attmask_ray.train.loop import train_loop_per_worker

    sampled = {k: v for k, v in params.items() if not k.startswith("_")}
    cfg = trial_config(params["_base"], sampled)
    ctx = ray.tune.get_context()
    trial_name = ctx.get_trial_name()
    s = cfg.scaling
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"experiment": to_dict(cfg), "trial": trial_name},
        scaling_config=ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu,
                                     resources_per_worker={"CPU": s.cpus_per_worker, **({"GPU": 1} if s.use_gpu else {})}),
        run_config=RunConfig(
            name=f"{trial_name}_train", storage_path=params["_storage"], callbacks=[TuneReportCallback()],
            failure_config=FailureConfig(max_failures=s.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=s.num_to_keep),
        ),
    )
    result = trainer.fit()
    final = result.metrics or {}
    if final.get("stop_reason"):
        raise TrialStopped(f"trial {trial_name} stopped: {final['stop_reason']}")
    tasks = tuple(params.get("_eval_tasks") or ())
    if tasks and result.checkpoint is not None:
        from attmask_ray.eval.tasks import run_evaluations

        try:
            with result.checkpoint.as_directory() as d:
                metrics = run_evaluations(d, tasks, eval_cfg=cfg.eval)
        except Exception as exc:  # noqa: BLE001 - training succeeded; keep its result, say what failed
            message = f"evaluation {','.join(tasks)} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            print(f"[attmask_ray] trial {trial_name}: {message}; rerun with python -m attmask_ray.evaluate "
                  f"{result.checkpoint.path} --tasks {','.join(tasks)}", flush=True)
            metrics = {}
            final = {**final, "eval_error": message}
        ray.tune.report({**{k: v for k, v in final.items() if isinstance(v, (int, float, str))},
                         **{f"eval/{k}": v for k, v in metrics.items()}, "source": "final_eval",
                         "checkpoint_path": result.checkpoint.path})
