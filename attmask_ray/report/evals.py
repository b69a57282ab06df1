"""The report's "Downstream evaluations" section: one table per evaluation task beyond Table 1
(salient-patch masking, retrieval, background robustness, fine-tuning), in the same row layout
(strategy, ratio, swept knobs; mean ± std over seeds). A group appears only when its columns
are in results.parquet."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from attmask_ray.report.tables import Summary, summarise, to_markdown, trial_finals

IN9_HEADERS = {"original": "Original", "only_fg": "Only-FG", "mixed_same": "Mixed-Same", "mixed_rand": "Mixed-Rand",
               "mixed_next": "Mixed-Next", "no_fg": "No-FG", "only_bg_b": "Only-BG-B", "only_bg_t": "Only-BG-T",
               "bg_gap": "BG-Gap"}


@dataclass(frozen=True)
class EvalGroup:
    title: str
    pattern: str  # full-match regex of the group's metric columns; group 1 orders and names them

    def columns(self, df: pd.DataFrame) -> list[tuple[str, str]]:
        """(column, header) of the group's columns present in df, in their natural order."""
        found = [(c, m.group(1)) for c in df.columns if (m := re.fullmatch(self.pattern, c))]
        return [(c, header(self.pattern, key)) for c, key in sorted(found, key=lambda x: order_key(self.pattern, x[1]))]


GROUPS = (
    EvalGroup("Salient-patch masking: k-NN top-1 with the r most attended patches hidden (paper Table A11)",
              r"masked_r(\d+)_top1"),
    EvalGroup("Retrieval without fine-tuning, Recall@k on unseen classes (paper Table 8)", r"retrieval_r(\d+)"),
    EvalGroup("Background robustness, IN-9 variants: linear-probe top-1 (paper Table 4)",
              r"in9_(" + "|".join(IN9_HEADERS) + ")"),
    EvalGroup("Fine-tuning: top-1 on the target's val split (paper Table 6)", r"finetune_(top1|last_top1|top5)"),
)


def header(pattern: str, key: str) -> str:
    if pattern.startswith("masked"):
        return f"r={int(key) / 100:g}"
    if pattern.startswith("retrieval"):
        return f"R@{key}"
    if pattern.startswith("in9"):
        return IN9_HEADERS[key]
    return {"top1": "best top-1", "last_top1": "last top-1", "top5": "top-5"}[key]


def order_key(pattern: str, key: str) -> tuple:
    if key.isdigit():
        return (int(key), "")
    if pattern.startswith("in9"):
        return (list(IN9_HEADERS).index(key), "")
    return (["top1", "top5", "last_top1"].index(key), "")


def eval_tables(df: pd.DataFrame, knobs: list[str]) -> list[tuple[str, Summary]]:
    """(title, table) per group with columns in ``df`` (the non-floor rows of results.parquet)."""
    out = []
    for group in GROUPS:
        metrics = group.columns(df)
        if metrics:
            trials = trial_finals(df, [c for c, _ in metrics])
            trials = trials.dropna(subset=[c for c, _ in metrics], how="all")  # trials the task did not evaluate
            if not trials.empty:
                out.append((group.title, summarise(trials, metrics, knobs)))
    return out


def eval_lines(tables: list[tuple[str, Summary]]) -> list[str]:
    """The markdown of the section (empty when no group is present)."""
    if not tables:
        return []
    lines = ["## Downstream evaluations", ""]
    for title, summary in tables:
        lines += [f"### {title}", "", to_markdown(summary), ""]
    return lines
