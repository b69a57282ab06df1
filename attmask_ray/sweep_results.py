"""Tune ResultGrid -> rows of the experiment's results.parquet (one per trial and evaluation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from attmask_ray.config import ConfigError
from attmask_ray.diagnostics import DIAGNOSTICS
from attmask_ray.results import FILENAME, config_columns
from attmask_ray.train.trial import trial_config

WRITER = "sweep"
TRAIN_COLUMNS = ("loss", "mim", "masked_ratio") + DIAGNOSTICS  # kept from the training reports


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


SOURCE_ORDER = {"train": 0, "online": 1, "final_eval": 2}


def result_rows(results: Any, base: dict[str, Any], journal: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Rows for every trial: each report that carries k-NN ("online"), each other epoch-end report
    that carries the collapse diagnostics ("train": loss and diagnostics, no k-NN) and the final
    evaluation ("final_eval").

    Reports come from the ResultGrid's ``metrics_dataframe`` and from the results ``journal``
    (:mod:`attmask_ray.results_journal`: every report, also those a restored trial's dataframe
    lost). Rows are deduplicated on (trial, member, source, step, epoch): the journal, written
    in arrival order, wins over the dataframe and a later journal line over an earlier one.
    """
    results = list(results)
    grid = {_trial_id(res): res for res in results}
    reports: dict[str, list[Mapping[str, Any]]] = {tid: [] for tid in grid}
    sampled: dict[str, dict[str, Any]] = {tid: _sampled(res.config) for tid, res in grid.items()}
    for res in results:
        df = res.metrics_dataframe
        if df is not None and not df.empty:
            reports[_trial_id(res)].extend(rec.to_dict() for _, rec in df.iterrows())
    for record in journal:
        tid = str(record["trial_id"])
        reports.setdefault(tid, []).append(record["result"])
        sampled.setdefault(tid, _sampled(record.get("config")))
    rows: list[dict[str, Any]] = []
    for tid, recs in reports.items():
        res = grid.get(tid)
        status = "error" if res is not None and res.error else "ok"
        run_error = str(res.error or "") if res is not None else ""
        cfg_cols = _config_columns(base, sampled[tid])
        merged: dict[tuple, dict[str, Any]] = {}
        for rec in recs:
            row = report_row(rec, base, sampled[tid], cfg_cols)
            if row is not None:
                key = (row.get("member"), row["source"], row["step"], _epoch_key(row["epoch"]))
                merged.pop(key, None)  # the newest report of a key wins
                merged[key] = row
        if not merged:
            rows.append({"trial_id": tid, "source": "none", "status": status, "error": run_error, "writer": WRITER,
                         **cfg_cols})
            continue
        members = list(dict.fromkeys(r.get("member") for r in merged.values()))  # runs in the order they ran
        for row in sorted(merged.values(), key=lambda r: (members.index(r.get("member")), r["step"], r["epoch"],
                                                          SOURCE_ORDER[r["source"]])):
            eval_error = row.pop("eval_error")
            rows.append({"trial_id": tid, **row, "status": status, "error": eval_error or run_error})
    return rows


def _trial_id(res: Any) -> str:
    return Path(res.path).name if res.path else ""


def _sampled(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (config or {}).items() if not str(k).startswith("_")}


def _config_columns(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    try:
        return config_columns(trial_config(base, sampled))
    except ConfigError:
        return {}


def report_row(rec: Mapping[str, Any], base: dict[str, Any], sampled: dict[str, Any],
               cfg_cols: dict[str, Any]) -> dict[str, Any] | None:
    """One report -> its results row (without trial id and status), or None for a report that is
    neither an online k-NN, an epoch end with diagnostics nor a final evaluation."""
    final_eval = rec.get("source") == "final_eval"
    member = rec.get("member")
    member = member if isinstance(member, str) else None
    knob = rec.get("member_knob")
    row_cfg = cfg_cols
    if member and isinstance(knob, str):  # a member run of a mean objective: its own value of the knob
        row_cfg = _config_columns(base, {**sampled, knob: member}) or cfg_cols
    has_knn = not (_missing(rec.get("knn_top1")) and _missing(rec.get("member_knn_top1")))
    has_diag = any(not _missing(rec.get(k)) for k in DIAGNOSTICS)
    if not final_eval and not has_knn and not has_diag:
        return None
    if final_eval:  # the evaluation tasks' metrics only (the online ones are the previous row)
        metrics = {k.removeprefix("eval/"): v for k, v in rec.items() if _num(v) and k.startswith("eval/")}
    else:
        metrics = {k: v for k, v in rec.items()
                   if _num(v) and (k.startswith(("knn_", "member_knn_")) or k in TRAIN_COLUMNS)}
    eval_error = rec.get("eval_error") if final_eval else None
    return {"epoch": float(_value(rec.get("epoch"), float("nan"))), "step": int(_value(rec.get("step"), 0)),
            "source": "final_eval" if final_eval else ("online" if has_knn else "train"),
            "checkpoint": checkpoint if isinstance(checkpoint := rec.get("checkpoint_path"), str) else "",
            "eval_error": eval_error if isinstance(eval_error, str) else "",
            "writer": WRITER, **metrics, **row_cfg, **({"member": member, "member_knob": knob} if member else {})}


def _epoch_key(epoch: float) -> float | None:
    return None if pd.isna(epoch) else round(epoch, 6)


def _missing(v: Any) -> bool:
    return not _num(v) or pd.isna(v)


def _value(v: Any, default: float) -> float:
    return default if _missing(v) else v


def checkpoint_kept(path: str) -> bool:
    """Whether a row's checkpoint can still be loaded: a local folder that exists (Train keeps only
    ``scaling.num_to_keep`` per trial), or a URI (not checked here); False for no checkpoint."""
    return bool(path) and ("://" in path or Path(path).exists())


def last_kept_checkpoints(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{trial_id: the checkpoint of its latest row whose checkpoint is kept}."""
    out: dict[str, str] = {}
    for row in rows:
        if row.get("checkpoint_kept"):
            out[str(row["trial_id"])] = str(row["checkpoint"])
    return out


def write_sweep_results(exp_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Replace this sweep's rows (keep rows written by others, e.g. the evaluate CLI); atomic.
    Each row says whether its checkpoint is still on disk (``checkpoint_kept``)."""
    import os

    for row in rows:
        row["checkpoint_kept"] = checkpoint_kept(str(row.get("checkpoint") or ""))

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
