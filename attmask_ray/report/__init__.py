"""Experiment reports: results.parquet -> report.md (paper Table 1 layout) + plots + terminal table.

``python -m attmask_ray.report EXPERIMENT_DIR [--out DIR] [--metric knn_top1]``;
from code: ``build_report(experiment_dir, out_dir=None) -> Path`` (report.md).
"""

from attmask_ray.report.build import Report, build_report, make_report
from attmask_ray.report.tables import ReportError
from attmask_ray.report.terminal import print_report

__all__ = ["Report", "ReportError", "build_report", "make_report", "print_report"]
