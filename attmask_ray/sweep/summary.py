"""What the sweep driver prints at the end: the best trials and each one's latest kept checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from attmask_ray.sweep.file import Sweep
from attmask_ray.sweep.spec import TuneSpec


def best_table(results: Any, sweep: Sweep) -> Table:
    """The 10 best trials with their knob values, metric, epoch and status."""
    spec = sweep.spec
    table = Table(title=f"best trials by {spec.metric} ({spec.mode})")
    knobs = list(sweep.describe_space())
    for col in ["trial", *knobs, spec.metric, "epoch", "status"]:
        table.add_column(col)
    for value, res in ranked(results, spec)[:10]:
        cfg = res.config or {}
        table.add_row(short_trial_id(res), *[str(cfg.get(k, "")) for k in knobs],
                      f"{value:.2f}" if isinstance(value, (int, float)) else "-",
                      f"{(res.metrics or {}).get('epoch', 0):.1f}", "error" if res.error else "ok")
    return table


def ranked(results: Any, spec: TuneSpec) -> list[tuple[Any, Any]]:
    """(metric value, result) of every trial, best first; trials without the metric last."""
    rows = [((res.metrics or {}).get(spec.metric), res) for res in results]
    sign = -1 if spec.mode == "max" else 1
    rows.sort(key=lambda r: (r[0] is None, sign * (r[0] or 0)))
    return rows


def checkpoint_lines(results: Any, spec: TuneSpec, checkpoints: dict[str, str]) -> list[str]:
    """One line per trial of the best-trials order: its latest checkpoint still on disk (full path,
    on its own line so that it can be copied into evaluate/export/viz)."""
    lines = []
    for _, res in ranked(results, spec)[:10]:
        folder = Path(res.path).name if res.path else ""
        lines.append(f"  {short_trial_id(res)}: {checkpoints.get(folder, '- (none kept)')}")
    return lines


def short_trial_id(res: Any) -> str:
    """The trial's Tune id (``attmask_trial_<id>_<n>_<knobs>_<time>`` -> ``<id>``), as in the progress lines."""
    folder = Path(res.path).name if res.path else "?"
    return folder.split("_")[2] if folder.startswith("attmask_trial_") and folder.count("_") >= 2 else folder
