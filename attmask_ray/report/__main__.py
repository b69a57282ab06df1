"""``python -m attmask_ray.report EXPERIMENT_DIR [--out DIR] [--metric NAME]``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from attmask_ray.report import ReportError, make_report, print_report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m attmask_ray.report",
                                description="results.parquet -> report.md (Table 1 layout) + plots")
    p.add_argument("experiment_dir", help="experiment folder holding results.parquet")
    p.add_argument("--out", default=None, help="output folder (default: EXPERIMENT_DIR/report)")
    p.add_argument("--metric", default="knn_top1", help="metric plotted vs epoch and vs each swept knob")
    args = p.parse_args(argv)
    try:
        report = make_report(args.experiment_dir, args.out, metric=args.metric)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
