"""``python -m attmask_ray.floors SWEEP.py[:...] [--out EXPERIMENT_DIR]``: k-NN floors of a sweep's data.

Prints the raw-pixel and random-init-ViT k-NN accuracies for the sweep's base config (and their
Recall@k on the retrieval split when the sweep's eval_tasks include ``retrieval``) and,
with ``--out``, appends them to the experiment's results.parquet (source "floor") so the
report shows them next to the trained models.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from attmask_ray.config import ConfigError
from attmask_ray.output_paths import output_problem
from attmask_ray.results import ResultRow, ResultsError, config_columns, read_results, table_path, write_results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.floors", description=__doc__.split("\n\n")[0])
    p.add_argument("target", help="sweep file (with presets/overrides) whose data and model define the floors")
    p.add_argument("--out", default=None, help="experiment folder whose results.parquet gets the floor rows")
    args = p.parse_args(argv)
    console = Console()
    try:
        from attmask_ray.data import DataError
        from attmask_ray.eval.floors import knn_floors, retrieval_floors
        from attmask_ray.sweep.file import load_sweep

        sweep = load_sweep(args.target)
        if args.out is not None:  # before the features are computed, not after
            if problem := output_problem(args.out, kind="dir"):
                raise ConfigError(f"--out {args.out}: {problem}; pass an experiment folder")
            if table_path(args.out).exists():
                read_results(args.out)  # a damaged table is refused now, not after the work
        floors = knn_floors(sweep.config)
        if "retrieval" in sweep.spec.eval_tasks:
            floors |= retrieval_floors(sweep.config)
    except (ConfigError, DataError, ResultsError) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    recall = sorted({key.split("_retrieval_")[1] for key in floors if "_retrieval_" in key}, key=lambda r: int(r[1:]))
    table = Table(title=f"k-NN floors ({sweep.config.data.val_path})")
    for column in ["floor", "top-1", "top-5"] + [f"R@{r[1:]}" for r in recall]:
        table.add_column(column)
    for name in ("raw_pixel", "random_init"):
        table.add_row(name, f"{floors[f'{name}_knn_top1']:.2f}", f"{floors[f'{name}_knn_top5']:.2f}",
                      *(f"{floors[f'{name}_retrieval_{r}']:.2f}" for r in recall))
    console.print(table)
    if args.out:
        rows = [ResultRow(f"floor_{name}", "floor", "floors", epoch=0.0, step=0,
                          metrics={"knn_top1": floors[f"{name}_knn_top1"], "knn_top5": floors[f"{name}_knn_top5"]}
                          | {f"retrieval_{r}": floors[f"{name}_retrieval_{r}"] for r in recall},
                          config=config_columns(sweep.config), info={"floor": name})
                for name in ("raw_pixel", "random_init")]
        console.print(f"appended to {write_results(args.out, rows)}")
    return 0
