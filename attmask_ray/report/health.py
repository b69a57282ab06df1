"""The report's "Learning health" section: collapse diagnostics (attmask_ray.diagnostics) per
configuration (final values, mean ± std over seeds), a few collapse flags and one plot
``diagnostics_vs_epoch.png`` (one subplot per diagnostic, one line per trial)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attmask_ray.diagnostics import DIAGNOSTICS
from attmask_ray.report.plots import Plot, diagnostics_vs_epoch
from attmask_ray.report.tables import summarise, to_markdown, trial_finals

PLOT_FILE = "diagnostics_vs_epoch.png"
HEADERS = {"teacher_entropy": "H_t/lnK", "teacher_student_kl": "KL(t‖s)", "teacher_patch_entropy": "H_tp/lnK",
           "teacher_student_patch_kl": "KL_patch", "teacher_embed_std": "embed std",
           "embed_std_ratio": "std·√d", "val_mean_cosine": "val cos", "fg_attention_share": "fg attn",
           "fg_patch_frac": "fg patches"}
LEGEND = [
    "H_t/lnK (`teacher_entropy`): teacher [CLS] target entropy / ln K; near 1 = uniform collapse, near 0 = one-hot collapse.",
    "KL(t‖s) (`teacher_student_kl`): KL(teacher ‖ student) of the [CLS] distributions across views; "
    "H_tp/lnK and KL_patch: the same on masked patch tokens (iBOT only).",
    "std·√d (`embed_std_ratio`): per-dimension std of the L2-normalised teacher [CLS] embeddings times √d; "
    "~1 healthy, → 0 collapse.",
    "val cos (`val_mean_cosine`): mean pairwise cosine of the val k-NN features; → 1 collapse.",
    "fg attn (`fg_attention_share`) vs fg patches (`fg_patch_frac`, chance level): attention share on foreground "
    "patches; above chance = the [CLS] attends to the object (so attmask_high hides it).",
]


@dataclass
class Health:
    """What the section found: markdown lines, the plot (if any), flags and notes."""

    lines: list[str]
    plot: Plot | None = None
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def collapse_flags(finals: pd.DataFrame) -> list[str]:
    """Heuristic one-line warnings per trial from its final diagnostics (thresholds in the text)."""
    checks = [("teacher_entropy", lambda v: v > 0.95, "teacher targets near uniform (H_t/lnK {v:.2f} > 0.95)"),
              ("teacher_entropy", lambda v: v < 0.02, "teacher targets near one-hot (H_t/lnK {v:.3f} < 0.02)"),
              ("embed_std_ratio", lambda v: v < 0.1, "teacher embeddings collapsed (std·√d {v:.3f} < 0.1)"),
              ("val_mean_cosine", lambda v: v > 0.95, "val features nearly identical (mean cos {v:.3f} > 0.95)")]
    flags = []
    for _, row in finals.iterrows():
        for col, bad, text in checks:
            v = row.get(col, float("nan"))
            if isinstance(v, (int, float)) and not math.isnan(v) and bad(v):
                flags.append(f"{row['trial_id']}: {text.format(v=v)}")
    return flags


def health_section(df: pd.DataFrame, knobs: list[str], out_dir: Path) -> Health:
    """The "Learning health" section from the results rows (missing columns: a note, never an error)."""
    present = [m for m in DIAGNOSTICS if m in df.columns and df[m].notna().any()]
    lines = ["## Learning health (collapse diagnostics)", ""]
    if not present:
        note = ("no collapse-diagnostic columns in results.parquet (runs from before this feature, or no epoch "
                f"finished yet): expected {', '.join(DIAGNOSTICS)}")
        return Health(lines + [f"- {note}", ""], notes=[note])
    notes = []
    if "fg_attention_share" not in present:
        notes.append("fg_attention_share not reported: set eval.foreground_threshold (grayscale data) to measure it")
    if "teacher_patch_entropy" not in present:
        notes.append("patch diagnostics absent (DINO variant, or older runs)")
    finals = trial_finals(df, present)
    summary = summarise(finals, [(m, HEADERS[m]) for m in present], knobs)
    plot = diagnostics_vs_epoch(df, finals, summary.keys, present, out_dir / PLOT_FILE, knobs)
    flags = collapse_flags(finals)
    lines += ["Final value per trial (last epoch reported), mean ± std over seeds.", "", to_markdown(summary), ""]
    lines += [f"- {text}" for text in LEGEND] + [""]
    if flags:
        lines += ["Possible collapse (heuristic thresholds):", ""] + [f"- ⚠ {f}" for f in flags] + [""]
    lines += [f"- {n}" for n in notes] + ([""] if notes else [])
    lines += [f"![diagnostics vs epoch]({plot.path.name})", ""]
    return Health(lines, plot, flags, notes)


__all__ = ["HEADERS", "Health", "collapse_flags", "health_section"]
