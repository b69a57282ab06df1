"""Assemble the report: Table 1 layout + plots -> ``report.md`` (+ PNGs) in one folder."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attmask_ray.report.evals import eval_lines, eval_tables
from attmask_ray.report.health import Health, health_section
from attmask_ray.report.plots import Plot, metric_vs_epoch, metric_vs_knob
from attmask_ray.report.tables import (ReportError, Summary, knob_label, missing_notes, summarise,
                                       swept_knobs, table_metrics, to_markdown, trial_finals)
from attmask_ray.output_paths import output_problem
from attmask_ray.results import FILENAME, ResultsError, read_results

REPORT_DIR = "report"  # default output folder inside the experiment folder
REPORT_FILE = "report.md"


@dataclass
class Report:
    """What :func:`make_report` wrote and found."""

    markdown: Path  # report.md
    summary: Summary  # the Table 1 rows
    plots: dict[str, Plot] = field(default_factory=dict)  # name -> PNG + series labels
    notes: list[str] = field(default_factory=list)  # missing metrics, skipped plots, ...
    n_trials: int = 0
    floors: list[tuple[str, float, float]] = field(default_factory=list)  # (name, k-NN top-1, top-5)
    checkpoints: list[tuple[str, float, str]] = field(default_factory=list)  # (trial, epoch, path) still on disk
    health: Health | None = None  # the "Learning health" section (collapse diagnostics)
    evals: list[tuple[str, Summary]] = field(default_factory=list)  # "Downstream evaluations": (title, table)


def make_report(experiment_dir: str | Path, out_dir: str | Path | None = None,
                metric: str = "knn_top1") -> Report:
    """Read ``experiment_dir/results.parquet``; write report.md and the PNG plots to ``out_dir``
    (default ``experiment_dir/report``). ``metric`` is the one plotted (vs epoch and vs knobs).

    Missing metric columns are noted in the report (cells '-'), never raised.
    Raises ReportError when there is no usable results table.
    """
    experiment_dir = Path(experiment_dir)
    try:
        df = read_results(experiment_dir)
    except (FileNotFoundError, ResultsError) as exc:
        raise ReportError(str(exc)) from None
    if df.empty:
        raise ReportError(f"{experiment_dir / FILENAME} has no rows yet; wait for the first evaluation")
    floors = pd.DataFrame()
    if "source" in df.columns:  # k-NN floors (python -m attmask_ray.floors) are references, not trials
        floors = df[df["source"] == "floor"]
        df = df[df["source"] != "floor"]
        if df.empty:
            raise ReportError(f"{experiment_dir / FILENAME} holds only floor rows; run the sweep first")
    out = Path(out_dir) if out_dir is not None else experiment_dir / REPORT_DIR
    if problem := output_problem(out, kind="dir"):
        raise ReportError(f"report folder {out}: {problem}; pass --out a writable folder")
    out.mkdir(parents=True, exist_ok=True)

    metrics = table_metrics(df)
    wanted = [m for m, _ in metrics] + ([metric] if metric not in [m for m, _ in metrics] else [])
    trials = trial_finals(df, wanted)
    knobs = swept_knobs(trials)
    summary = summarise(trials, metrics, knobs)
    notes = missing_notes(summary.missing)
    plots: dict[str, Plot] = {}
    if metric not in df.columns:
        notes.append(f"plotted metric {metric!r} is not in results.parquet: no plots "
                     f"(metric columns present: {', '.join(metric_columns(df)) or 'none'})")
    else:
        plots["epoch"] = metric_vs_epoch(df, trials, summary.keys, metric, out / f"{metric}_vs_epoch.png", knobs,
                                         floors=floor_rows(floors))
        for knob in knobs:
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", knob_label(knob))
            plots[knob] = metric_vs_knob(trials, knob, metric, out / f"{metric}_vs_{name}.png", knobs)
    health = health_section(df, knobs, out)
    report = Report(out / REPORT_FILE, summary, plots, notes, n_trials=len(trials), floors=floor_rows(floors),
                    health=health, checkpoints=kept_checkpoints(df), evals=eval_tables(df, knobs))
    report.markdown.write_text(render_markdown(report, experiment_dir, metric, knobs))
    return report


def build_report(experiment_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the experiment's report (see :func:`make_report`); returns the path of report.md."""
    return make_report(experiment_dir, out_dir).markdown


def floor_rows(floors: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(name, k-NN top-1, top-5) of each floor row, latest first per name."""
    out = []
    for _, row in floors.iterrows():
        name = str(row.get("floor", row.get("trial_id", "floor")))
        out.append((name, float(row.get("knn_top1", float("nan"))), float(row.get("knn_top5", float("nan")))))
    return list({name: (name, t1, t5) for name, t1, t5 in out}.values())


def metric_columns(df) -> list[str]:
    fixed = {"trial_id", "epoch", "step", "source", "checkpoint", "checkpoint_kept"}
    return [c for c in df.columns if c not in fixed and not c.startswith("config/")]


def render_markdown(report: Report, experiment_dir: Path, metric: str, knobs: list[str]) -> str:
    lines = [f"# Report: {experiment_dir.name}", "",
             f"`{experiment_dir / FILENAME}`: {report.n_trials} trials. "
             f"Swept knobs: {', '.join(knob_label(k) for k in knobs) or 'none'}. "
             "Cells are the final value per trial, mean ± std (sample std) over seeds when there are several.", "",
             "## Results (paper Table 1 layout)", "", to_markdown(report.summary), ""]
    if report.floors:
        lines += ["## k-NN floors (same splits and protocol)", "", "| floor | k-NN top-1 | k-NN top-5 |", "|---|---|---|"]
        lines += [f"| {name} | {t1:.2f} | {t5:.2f} |" for name, t1, t5 in report.floors] + [""]
    lines += eval_lines(report.evals)
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    if "epoch" in report.plots:
        lines += [f"## {metric} vs epoch (paper Fig. 4)", "", f"![{metric} vs epoch]({report.plots['epoch'].path.name})", ""]
    knob_plots = [(k, p) for k, p in report.plots.items() if k != "epoch"]
    if knob_plots:
        lines += [f"## {metric} vs swept knobs (paper Table 9 as curves)", ""]
        lines += [f"![{metric} vs {knob_label(k)}]({p.path.name})" for k, p in knob_plots] + [""]
    if report.health is not None:
        lines += report.health.lines
    if report.checkpoints:
        lines += ["## Checkpoints (latest kept per trial)", "",
                  "Load one with `python -m attmask_ray.evaluate CKPT` or export it with `python -m attmask_ray.export CKPT OUT.pth`.",
                  "", "| trial | epoch | checkpoint |", "|---|---|---|"]
        lines += [f"| {trial} | {epoch:g} | `{path}` |" for trial, epoch, path in report.checkpoints] + [""]
    return "\n".join(lines)


def kept_checkpoints(df: pd.DataFrame) -> list[tuple[str, float, str]]:
    """(trial, epoch, path) of each trial's latest row whose checkpoint is still on disk
    (``checkpoint_kept``; results written before that column existed list none)."""
    if "checkpoint_kept" not in df.columns or "checkpoint" not in df.columns:
        return []
    kept = df[df["checkpoint_kept"].fillna(False).astype(bool)]
    out = []
    for trial, frame in kept.groupby("trial_id", sort=True):
        last = frame.sort_values(["epoch", "step"]).iloc[-1]
        out.append((str(trial), float(last["epoch"]), str(last["checkpoint"])))
    return out
