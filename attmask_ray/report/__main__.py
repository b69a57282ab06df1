"""``python -m attmask_ray.report EXPERIMENT_DIR [--out DIR] [--metric NAME]``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from attmask_ray.metrics import canonical
from attmask_ray.report import ReportError, make_report, print_report


def check_metric(experiment_dir: str, metric: str) -> None:
    """--metric names a column of the results table (the sweep's own report only notes a missing one)."""
    from attmask_ray.results import ResultsError, read_results
    from attmask_ray.report.build import metric_columns

    try:
        df = read_results(experiment_dir)
    except (FileNotFoundError, ResultsError) as exc:
        raise ReportError(str(exc)) from None
    if metric not in df.columns:
        present = ", ".join(metric_columns(df)) or "none"
        raise ReportError(f"--metric {metric!r} is not a column of {experiment_dir}/results.parquet; present: {present}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.report",
                                description="results.parquet -> report.md (Table 1 layout) + plots")
    p.add_argument("experiment_dir", help="experiment folder holding results.parquet")
    p.add_argument("--out", default=None, help="output folder (default: EXPERIMENT_DIR/report)")
    p.add_argument("--metric", default="knn_top1", help="metric plotted vs epoch and vs each swept knob")
    args = p.parse_args(argv)
    metric = canonical(args.metric)  # a name written before (knn_k20_top1) is the column it became
    try:
        check_metric(args.experiment_dir, metric)
        report = make_report(args.experiment_dir, args.out, metric=metric)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
