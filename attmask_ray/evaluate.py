"""Evaluate a checkpoint with the paper's protocols (SPEC §6) as Ray tasks.

    python -m attmask_ray.evaluate CKPT --tasks knn,fewshot,linear,masked,retrieval,in9,finetune \
        [--train PATH --val PATH] [--address auto] [--out EXPERIMENT_DIR] \
        [--student] [--attn-checkpoint CKPT2] [--set eval.linear_mode=full,eval.num_gpus=1]

retrieval reads ``eval.retrieval_path`` (default: the val split), in9 ``eval.in9_root`` (made by
``data_prep.in9`` or ``data_prep.fashion_in9``), finetune trains on ``--train`` and scores ``--val``.

Features are extracted once per split and shared by the tasks; metrics print as a
table and, with ``--out``, are appended to ``EXPERIMENT_DIR/results.parquet``.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from attmask_ray.checkpoint import CheckpointError, load_checkpoint
from attmask_ray.config import ConfigError, apply_overrides, parse_overrides
from attmask_ray.data import DataError
from attmask_ray.eval.errors import EvalError
from attmask_ray.eval.runner import run_evaluations
from attmask_ray.eval.tasks import TASKS
from attmask_ray.results import ResultsError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="checkpoint directory (holding state.pt) or the state.pt file")
    p.add_argument("--tasks", default="knn", help=f"comma-separated subset of {','.join(TASKS)} (default: knn)")
    p.add_argument("--train", default=None, help="train split (default: the checkpoint's data.knn_train_path or train_path)")
    p.add_argument("--val", default=None, help="validation split (default: the checkpoint's data.val_path)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--out", default=None, help="experiment folder whose results.parquet gets one row per task")
    p.add_argument("--student", action="store_true", help="evaluate the student backbone instead of the teacher")
    p.add_argument("--attn-checkpoint", default=None, help="masked task: take the [CLS] attention from this checkpoint's teacher")
    p.add_argument("--set", default="", help="eval config overrides, e.g. eval.linear_epochs=10,eval.num_gpus=1")
    p.add_argument("--verify-data", action="store_true", help="first check every shard of the train and val splits against "
                   "the SHA-256 recorded at conversion (same as python -m data_prep.verify)")
    p.add_argument("--local", action="store_true", help="run in this process without Ray (debugging)")
    p.add_argument("--trial-id", default="", help="trial id for the results rows (the trial folder name), so reports "
                                                  "merge them with that trial's training rows")
    return p


def print_table(metrics: dict[str, float], title: str, console: Console | None = None) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.2f}")
    (console or Console()).print(table)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        overrides = parse_overrides(args.set)
        bad = [k for k in overrides if not k.startswith("eval.")]
        if bad:
            raise ConfigError(f"--set only takes eval.* keys here, got {', '.join(bad)}")
        cfg = apply_overrides(ckpt.config, overrides)
        if args.verify_data:
            from data_prep.verify import require_verified

            d = ckpt.config.data
            for path in dict.fromkeys((args.train or d.knn_train_path or d.train_path, args.val or d.val_path)):
                print(require_verified(path))
        metrics = run_evaluations(ckpt.path, args.tasks, args.train, args.val, cfg.eval,
                                  which="student" if args.student else "teacher", attn_checkpoint=args.attn_checkpoint,
                                  out_dir=args.out, address=args.address, local=args.local, trial_id=args.trial_id)
    except (CheckpointError, EvalError, ConfigError, DataError, ResultsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print_table(metrics, f"{ckpt.path} (step {ckpt.step}, {'student' if args.student else 'teacher'})")
    if args.out:
        print(f"appended to {args.out}/results.parquet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
