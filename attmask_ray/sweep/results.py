"""Tune ResultGrid (+ the results journal) -> the sweep's rows of results.parquet (writer "sweep").

Each report that carries k-NN becomes an "online" row, each other epoch-end report that carries
the collapse diagnostics a "train" row, the final evaluation a "final_eval" row, and a trial
without any report one "none" row; all are :class:`attmask_ray.results.ResultRow`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple

import pandas as pd

from attmask_ray.config import ConfigError
from attmask_ray.diagnostics import DIAGNOSTICS
from attmask_ray.results import ResultRow, config_columns
from attmask_ray.sweep.trial import trial_config

WRITER = "sweep"
TRAIN_COLUMNS = ("loss", "mim", "koleo", "masked_ratio") + DIAGNOSTICS  # kept from the training reports
SOURCE_ORDER = {"train": 0, "online": 1, "final_eval": 2}


class _Report(NamedTuple):
    row: ResultRow  # without status and error
    eval_error: str  # a failed final evaluation's message ("" otherwise)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def result_rows(results: Any, base: dict[str, Any], journal: Iterable[Mapping[str, Any]] = ()) -> list[ResultRow]:
    """Rows for every trial: each report that carries k-NN ("online"), each other epoch-end report
    that carries the collapse diagnostics ("train": loss and diagnostics, no k-NN) and the final
    evaluation ("final_eval").

    Reports come from the ResultGrid's ``metrics_dataframe`` and from the results ``journal``
    (:mod:`attmask_ray.sweep.journal`: every report, also those a restored trial's dataframe
    lost). Rows are deduplicated on (trial, member, source, step, epoch): the journal, written
    in arrival order, wins over the dataframe and a later journal line over an earlier one.
    """
    results = list(results)
    grid = {_trial_id(res): res for res in results}
    reports: dict[str, list[Mapping[str, Any]]] = {tid: [] for tid in grid}
    sampled: dict[str, dict[str, Any]] = {tid: dict(res.config or {}) for tid, res in grid.items()}
    for res in results:
        df = res.metrics_dataframe
        if df is not None and not df.empty:
            reports[_trial_id(res)].extend(rec.to_dict() for _, rec in df.iterrows())
    for record in journal:
        tid = str(record["trial_id"])
        reports.setdefault(tid, []).append(record["result"])
        sampled.setdefault(tid, dict(record.get("config") or {}))
    rows: list[ResultRow] = []
    for tid, recs in reports.items():
        res = grid.get(tid)
        status = "error" if res is not None and res.error else "ok"
        run_error = str(res.error or "") if res is not None else ""
        cfg_cols = _config_columns(base, sampled[tid])
        merged: dict[tuple, _Report] = {}
        for rec in recs:
            report = report_row(tid, rec, base, sampled[tid], cfg_cols)
            if report is not None:
                row = report.row
                key = (row.info.get("member"), row.source, row.step, _epoch_key(row.epoch))
                merged.pop(key, None)  # the newest report of a key wins
                merged[key] = report
        if not merged:
            rows.append(ResultRow(tid, "none", WRITER, config=cfg_cols, info={"status": status, "error": run_error}))
            continue
        members = list(dict.fromkeys(r.row.info.get("member") for r in merged.values()))  # runs in the order they ran
        for row, eval_error in sorted(merged.values(), key=lambda r: (members.index(r.row.info.get("member")), r.row.step,
                                                                      r.row.epoch, SOURCE_ORDER[r.row.source])):
            rows.append(replace(row, info={**row.info, "status": status, "error": eval_error or run_error}))
    return rows


def _trial_id(res: Any) -> str:
    return Path(res.path).name if res.path else ""


def _config_columns(base: dict[str, Any], sampled: dict[str, Any]) -> dict[str, Any]:
    try:
        return config_columns(trial_config(base, sampled))
    except ConfigError:
        return {}


def report_row(trial_id: str, rec: Mapping[str, Any], base: dict[str, Any], sampled: dict[str, Any],
               cfg_cols: dict[str, Any]) -> _Report | None:
    """One report -> its results row (without status and error), or None for a report that is
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
    checkpoint = rec.get("checkpoint_path")
    row = ResultRow(trial_id, "final_eval" if final_eval else ("online" if has_knn else "train"), WRITER,
                    epoch=float(_value(rec.get("epoch"), float("nan"))), step=int(_value(rec.get("step"), 0)),
                    checkpoint=checkpoint if isinstance(checkpoint, str) else "", metrics=metrics, config=row_cfg,
                    info={"member": member, "member_knob": knob} if member else {})
    return _Report(row, eval_error if isinstance(eval_error, str) else "")


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


def mark_kept(rows: Iterable[ResultRow]) -> list[ResultRow]:
    """The rows, each saying whether its checkpoint is still on disk (``checkpoint_kept``)."""
    return [replace(row, info={**row.info, "checkpoint_kept": checkpoint_kept(row.checkpoint)}) for row in rows]


def last_kept_checkpoints(rows: Iterable[ResultRow]) -> dict[str, str]:
    """{trial_id: the checkpoint of its latest row whose checkpoint is kept} (rows from :func:`mark_kept`)."""
    out: dict[str, str] = {}
    for row in rows:
        if row.info.get("checkpoint_kept"):
            out[row.trial_id] = row.checkpoint
    return out
