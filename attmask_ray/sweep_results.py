"""Tune ResultGrid -> rows of the experiment's results.parquet (one per trial and evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from attmask_ray.config import ConfigError
from attmask_ray.diagnostics import DIAGNOSTICS
from attmask_ray.results import FILENAME, config_columns
from attmask_ray.train.trial import trial_config

WRITER = "sweep"
TRAIN_COLUMNS = ("loss", "mim", "masked_ratio") + DIAGNOSTICS  # kept from the training reports


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def result_rows(results: Any, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for every trial: each report that carries k-NN ("online"), each other epoch-end report
    that carries the collapse diagnostics ("train": loss and diagnostics, no k-NN) and the final
    evaluation ("final_eval")."""
    rows: list[dict[str, Any]] = []
    for res in results:
        sampled = {k: v for k, v in (res.config or {}).items() if not k.startswith("_")}
        try:
            cfg_cols = config_columns(trial_config(base, sampled))
        except ConfigError:
            cfg_cols = {}
        trial_id = Path(res.path).name if res.path else ""
        status = "error" if res.error else "ok"
        df = res.metrics_dataframe
        if df is None or df.empty:
            rows.append({"trial_id": trial_id, "source": "none", "status": status, "error": str(res.error or ""),
                         "writer": WRITER, **cfg_cols})
            continue
        for _, rec in df.iterrows():
            final_eval = rec.get("source") == "final_eval"
            member = rec.get("member")
            member = member if isinstance(member, str) else None
            knob = rec.get("member_knob")
            row_cfg = cfg_cols
            if member and isinstance(knob, str):  # a member run of a mean objective: its own value of the knob
                try:
                    row_cfg = config_columns(trial_config(base, {**sampled, knob: member}))
                except ConfigError:
                    pass
            has_knn = not (pd.isna(rec.get("knn_top1", float("nan"))) and pd.isna(
                rec.get("member_knn_top1", float("nan"))))
            has_diag = any(_num(rec.get(k)) and not pd.isna(rec.get(k)) for k in DIAGNOSTICS)
            if not final_eval and not has_knn and not has_diag:
                continue
            if final_eval:  # the evaluation tasks' metrics only (the online ones are the previous row)
                metrics = {k.removeprefix("eval/"): v for k, v in rec.items() if _num(v) and k.startswith("eval/")}
            else:
                metrics = {k: v for k, v in rec.items()
                           if _num(v) and (k.startswith(("knn_", "member_knn_")) or k in TRAIN_COLUMNS)}
            eval_error = rec.get("eval_error") if final_eval else None
            rows.append({"trial_id": trial_id, "epoch": float(rec.get("epoch", float("nan"))),
                         "step": int(rec.get("step", 0) or 0), "source": "final_eval" if final_eval else ("online" if has_knn else "train"),
                         "checkpoint": str(rec.get("checkpoint_path", "") or ""), "status": status,
                         "error": str(eval_error if isinstance(eval_error, str) else (res.error or "")),
                         "writer": WRITER, **metrics, **row_cfg,
                         **({"member": member} if member else {})})
    return rows


def write_sweep_results(exp_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Replace this sweep's rows (keep rows written by others, e.g. the evaluate CLI); atomic."""
    import os

    path = exp_dir / FILENAME
    frames = []
    if path.exists():
        old = pd.read_parquet(path)
        if "writer" in old.columns:
            old = old[old["writer"] != WRITER]
        frames.append(old)
    frames.append(pd.DataFrame(rows))
    frame = pd.concat(frames, ignore_index=True)
    exp_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
