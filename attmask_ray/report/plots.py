"""Report plots: metric vs epoch per configuration (paper Fig. 4), metric vs each swept knob
(paper Table 9 as curves) and the collapse diagnostics vs epoch per trial. Each function
returns the PNG path and its series labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from attmask_ray.report.tables import STRATEGY, knob_label, sort_key  # noqa: E402


@dataclass(frozen=True)
class Plot:
    path: Path
    series: list[str]  # one label per drawn line, in legend order


def group_label(keys: list[str], values: tuple, shown: list[str]) -> str:
    """Label of one configuration from the values of the ``shown`` (swept) keys."""
    parts = [str(v) if k == STRATEGY else f"{knob_label(k).split('.')[-1]}={v}"
             for k, v in zip(keys, values) if k in shown]
    return ", ".join(parts) or "all trials"


MIN_SPAN = 5.0  # accuracy points: a y-axis never zooms below this, so noise does not look like a trend


def accuracy_limits(values: Sequence[float], floors: Sequence[float] = ()) -> tuple[float, float] | None:
    """y-axis limits of an accuracy plot: every value and floor inside with a 1-point margin (the
    axis starts at the lowest floor), at least MIN_SPAN points tall; None without values."""
    every = [*values, *floors]
    if not every:
        return None
    lo, hi = min(every) - 1.0, max(every) + 1.0
    if hi - lo < MIN_SPAN:
        mid = (hi + lo) / 2
        lo, hi = mid - MIN_SPAN / 2, mid + MIN_SPAN / 2
    return lo, hi


def metric_vs_epoch(df: pd.DataFrame, trials: pd.DataFrame, keys: list[str], metric: str,
                    out: Path, shown: list[str] | None = None,
                    floors: Sequence[tuple[str, float, float]] = ()) -> Plot:
    """Mean (± std band over seeds) of ``metric`` per epoch, one line per table row (Fig. 4).

    df: the raw results rows; trials: one row per trial with the key columns; shown: the
    keys named in the legend (default all keys; the swept knobs in reports); floors: (name,
    k-NN top-1, top-5) references drawn as dashed lines on a k-NN top-1 plot, whose y-axis
    then starts at the lowest floor. Any accuracy axis spans at least MIN_SPAN points.
    """
    shown = keys if shown is None else shown
    rows = df[df[metric].notna()][["trial_id", "epoch", metric]] if "epoch" in df else df.iloc[:0]
    per_trial = rows.groupby(["trial_id", "epoch"], as_index=False)[metric].last()
    per_trial = per_trial.merge(trials[["trial_id"] + keys], on="trial_id")
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    labels: list[str] = []
    groups = per_trial.groupby(keys, dropna=False, sort=False) if keys else [((), per_trial)]
    groups = sorted(groups, key=lambda g: tuple(sort_key(k, v) for k, v in zip(keys, _tuple(g[0]))))
    for values, frame in groups:
        curve = frame.groupby("epoch")[metric].agg(["mean", "std", "count"]).sort_index()
        label = group_label(keys, _tuple(values), shown)
        line, = ax.plot(curve.index, curve["mean"], marker="o", markersize=3, label=label)
        if (curve["count"] > 1).any():
            std = curve["std"].fillna(0)
            ax.fill_between(curve.index, curve["mean"] - std, curve["mean"] + std, color=line.get_color(), alpha=0.2)
        labels.append(label)
    refs = [(name, top1) for name, top1, _ in floors] if metric.startswith("knn_top1") else []
    for name, top1 in refs:
        ax.axhline(top1, linestyle="--", linewidth=1, color="gray")
        ax.annotate(f"{name} floor {top1:.1f}", (0.01, top1), xycoords=("axes fraction", "data"),
                    va="bottom", fontsize=7, color="dimgray")
    limits = accuracy_limits(per_trial[metric].dropna().tolist(), [t for _, t in refs])
    if limits:
        ax.set_ylim(*limits)
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} vs epoch (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8)
    return _save(fig, out, labels)


def metric_vs_knob(trials: pd.DataFrame, knob: str, metric: str, out: Path,
                   other_knobs: list[str]) -> Plot:
    """Final ``metric`` (mean ± std over trials) against the values of one swept knob.

    One series per strategy when the strategy also varies (and is not the knob itself);
    any other swept knobs are averaged over (said in the title).
    """
    split = STRATEGY if knob != STRATEGY and STRATEGY in other_knobs else None
    values = sorted(trials[knob].dropna().unique(), key=lambda v: sort_key(knob, v))
    numeric = all(sort_key(knob, v)[0] == 1 and not isinstance(v, str) for v in values)
    xpos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    labels: list[str] = []
    series = trials.groupby(split, sort=False) if split else [(None, trials)]
    series = sorted(series, key=lambda g: sort_key(STRATEGY, g[0]) if split else ())
    for name, frame in series:
        stats = frame.groupby(knob)[metric].agg(["mean", "std"]).dropna(subset=["mean"])
        if stats.empty:
            continue
        stats = stats.loc[sorted(stats.index, key=lambda v: sort_key(knob, v))]
        label = str(name) if split else metric
        ax.errorbar([xpos[v] for v in stats.index], stats["mean"], yerr=stats["std"].fillna(0),
                    marker="o", capsize=3, label=label, linestyle="-" if numeric else "none")
        labels.append(label)
    if not numeric:
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=20 if len(values) > 3 else 0)
    rest = [knob_label(k) for k in other_knobs if k not in (knob, split)]
    title = f"{metric} vs {knob_label(knob)}" + (f"\n(mean over {', '.join(rest)})" if rest else "")
    ax.set(xlabel=knob_label(knob), ylabel=f"final {metric}", title=title)
    ax.grid(alpha=0.3)
    if labels:
        ax.legend(fontsize=8)
    return _save(fig, out, labels)


def diagnostics_vs_epoch(df: pd.DataFrame, trials: pd.DataFrame, keys: list[str], metrics: list[str],
                         out: Path, shown: list[str] | None = None) -> Plot:
    """One subplot per diagnostic in ``metrics``, one line per trial (x = epoch).

    df: the raw results rows; trials: one row per trial with the key columns (legend labels
    from the ``shown`` keys, plus the trial id when several trials share a label).
    """
    shown = keys if shown is None else shown
    order = sorted(trials.set_index("trial_id").iterrows(),
                   key=lambda tr: (tuple(sort_key(k, tr[1][k]) for k in keys), str(tr[0])))
    labels = {t: group_label(keys, tuple(r[k] for k in keys), shown) for t, r in order}  # configuration order
    counts = pd.Series(list(labels.values())).value_counts()
    labels = {t: (f"{lab} ({t})" if counts[lab] > 1 else lab) for t, lab in labels.items()}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {t: cycle[i % len(cycle)] for i, t in enumerate(labels)}  # one colour per trial in every subplot
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), dpi=100, squeeze=False)
    handles: dict[str, object] = {}  # legend label -> line
    for ax, metric in zip(axes.flat, metrics):
        rows = df[df[metric].notna()][["trial_id", "epoch", metric]]
        curves = rows.groupby(["trial_id", "epoch"], as_index=False)[metric].last()
        for trial, label in labels.items():
            curve = curves[curves["trial_id"] == trial].sort_values("epoch")
            if curve.empty:
                continue
            line, = ax.plot(curve["epoch"], curve[metric], marker="o", markersize=2, label=label,
                            color=colours[trial])
            handles.setdefault(label, line)
        ax.set_xlabel("epoch")
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    series = [lab for lab in labels.values() if lab in handles]  # legend in trial order
    fig.tight_layout()
    if series:
        fig.legend([handles[lab] for lab in series], series, fontsize=7, loc="upper center",
                   ncol=min(3, len(series)), bbox_to_anchor=(0.5, 0.0))
    return _save(fig, out, series, bbox_inches="tight")


def _tuple(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def _save(fig, out: Path, labels: list[str], **savefig) -> Plot:
    out.parent.mkdir(parents=True, exist_ok=True)
    if not savefig:
        fig.tight_layout()
    fig.savefig(out, **savefig)
    plt.close(fig)
    return Plot(out, labels)


__all__ = ["Plot", "diagnostics_vs_epoch", "metric_vs_epoch", "metric_vs_knob"]
