"""results.parquet -> per-trial final metrics -> the paper's Table 1 layout (mean ± std over seeds).

A trial's final value of a metric is its last non-missing value ordered by (epoch, step),
evaluation-task rows winning over the online k-NN at the same point. Trials that differ
only in seed columns (``config/seed``, ``config/data.seed``, ...) form one table row.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import pandas as pd

from attmask_ray.masking import STRATEGIES
from attmask_ray.results import CONFIG_PREFIX

STRATEGY = f"{CONFIG_PREFIX}mask.strategy"
RATIO = f"{CONFIG_PREFIX}mask.pred_ratio"
IGNORED_KNOBS = (f"{CONFIG_PREFIX}name",)  # varies per run without being a knob
FEWSHOT = re.compile(r"^fewshot_nu(\d+)_mean$")
DEFAULT_FEWSHOT_NU = (1, 5, 10, 20)
METRIC_HELP = {"knn_top1": "k-NN evaluation", "linear_top1": "linear-probe evaluation",
               "fewshot": "few-shot k-NN evaluation"}


class ReportError(ValueError):
    """The results table cannot be reported (missing, empty, wrong columns); one-line message."""


def is_seed(column: str) -> bool:
    return column.startswith(CONFIG_PREFIX) and column.rsplit(".", 1)[-1].endswith("seed")


def table_metrics(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, header) of the Table 1 metrics: k-NN, linear, few-shot nu=... (present or not)."""
    nus = sorted({int(m.group(1)) for c in df.columns if (m := FEWSHOT.match(c))}) or list(DEFAULT_FEWSHOT_NU)
    return [("knn_top1", "k-NN"), ("linear_top1", "linear")] + [(f"fewshot_nu{n}_mean", f"ν={n}") for n in nus]


def missing_notes(columns: list[str]) -> list[str]:
    """One line per missing metric kind, e.g. all four few-shot columns in one note."""
    kinds: dict[str, list[str]] = {}
    for c in columns:
        kinds.setdefault("fewshot" if FEWSHOT.match(c) else c, []).append(c)
    notes = []
    for kind, cols in kinds.items():
        names = ", ".join(repr(c) for c in cols)
        verb = "is" if len(cols) == 1 else "are"
        what = METRIC_HELP.get(kind, "evaluation")
        notes.append(f"metric column{'s' if len(cols) > 1 else ''} {names} {verb} not in results.parquet "
                     f"(no {what} results yet): shown as '-'")
    return notes


def trial_finals(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per trial: config columns + the final value of each metric present in df."""
    if "trial_id" not in df.columns:
        raise ReportError("results.parquet has no 'trial_id' column; is it an attmask_ray results table?")
    source = df.get("source", pd.Series("", index=df.index))
    order = df.assign(_eval=(~source.isin(("online", "train"))).astype(int))  # training-time rows first
    sort_by = [c for c in ("epoch", "step", "_eval") if c in order.columns]
    order = order.sort_values(sort_by, kind="stable")
    config = [c for c in df.columns if c.startswith(CONFIG_PREFIX)]
    present = [m for m in metrics if m in df.columns]
    finals = order.groupby("trial_id", sort=True)[config + present].last()  # last non-null per column
    return finals.reset_index()


def swept_knobs(trials: pd.DataFrame) -> list[str]:
    """Config columns that vary across trials (seeds and run names excluded), strategy/ratio first."""
    varying = [c for c in trials.columns if c.startswith(CONFIG_PREFIX) and not is_seed(c)
               and c not in IGNORED_KNOBS and trials[c].astype(str).nunique() > 1]
    first = [c for c in (STRATEGY, RATIO) if c in varying]
    return first + sorted(c for c in varying if c not in first)


def sort_key(column: str, value: object) -> tuple:
    """Order knob values: strategies as in the paper's code, numbers and tuples numerically."""
    if column == STRATEGY and value in STRATEGIES:
        return (0, list(STRATEGIES).index(value), "")
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return (2, 0, value)
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
        return (1, float(value[0]), str(value))
    return (2, 0, str(value))


def knob_label(column: str) -> str:
    return column[len(CONFIG_PREFIX):] if column.startswith(CONFIG_PREFIX) else column


@dataclass
class Summary:
    """The Table 1 rows: ``keys`` columns, then per metric the mean/std/n over seeds."""

    keys: list[str]  # config columns identifying a row (strategy, ratio, other swept knobs)
    metrics: list[tuple[str, str]]  # (column, header)
    rows: pd.DataFrame  # keys + "seeds" + "<metric>/mean", "<metric>/std", "<metric>/n"
    missing: list[str] = field(default_factory=list)  # metric columns absent from the table


def summarise(trials: pd.DataFrame, metrics: list[tuple[str, str]], knobs: list[str]) -> Summary:
    """Group trials by strategy, ratio and the other swept knobs; mean, std (ddof 1), n per metric."""
    keys = [c for c in (STRATEGY, RATIO) if c in trials.columns] + [k for k in knobs if k not in (STRATEGY, RATIO)]
    missing = [m for m, _ in metrics if m not in trials.columns]
    frame = trials.copy()
    for m in missing:
        frame[m] = float("nan")
    cols = [m for m, _ in metrics]
    if keys:
        grouped = frame.groupby(keys, dropna=False, sort=False)
        agg = grouped[cols].agg(["mean", "std", "count"])
        seeds = grouped.size()
    else:  # a single configuration
        agg = frame[cols].agg(["mean", "std", "count"]).unstack().to_frame().T
        seeds = pd.Series([len(frame)])
    agg.columns = [f"{m}/{'n' if s == 'count' else s}" for m, s in agg.columns]
    rows = agg.reset_index(drop=not keys)
    rows.insert(len(keys), "seeds", list(seeds))
    if keys:
        rows = rows.iloc[sorted(range(len(rows)), key=lambda i: tuple(sort_key(k, rows.iloc[i][k]) for k in keys))]
    return Summary(keys, metrics, rows.reset_index(drop=True), missing)


def decimals(values: pd.Series) -> int:
    """2 decimals for percentages, 4 for fractions in [0, 1]."""
    v = values.dropna().abs()
    return 2 if v.empty or v.max() > 1.0 else 4


def cell(mean: float, std: float, n: int, places: int) -> str:
    if n == 0 or pd.isna(mean):
        return "-"
    if n > 1 and not pd.isna(std):
        return f"{mean:.{places}f} ± {std:.{places}f}"
    return f"{mean:.{places}f}"


def formatted(summary: Summary) -> tuple[list[str], list[list[str]]]:
    """Header and string cells of the table (shared by markdown and the terminal)."""
    header = [knob_label(k).replace("mask.", "").replace("pred_ratio", "ratio") for k in summary.keys]
    header += ["seeds"] + [h for _, h in summary.metrics]
    places = {m: decimals(summary.rows[f"{m}/mean"]) for m, _ in summary.metrics}
    body = []
    for _, r in summary.rows.iterrows():
        row = [str(r[k]) for k in summary.keys] + [str(int(r["seeds"]))]
        row += [cell(r[f"{m}/mean"], r[f"{m}/std"], int(r[f"{m}/n"]), places[m]) for m, _ in summary.metrics]
        body.append(row)
    return header, body


def to_markdown(summary: Summary) -> str:
    header, body = formatted(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)
