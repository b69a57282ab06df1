"""The experiment results table: ``<experiment>/results.parquet``: one row type, one writer, one reader.

Every row is a :class:`ResultRow`; its columns:
  trial_id (str), epoch (float: epochs trained, fractional for a mid-epoch report; NaN when the
  trial reported nothing), step (int), source (what the row is, see below), writer (who wrote
  it: "sweep", "evaluate" or "floors"), checkpoint (str path or ""), metric columns with the
  names of :mod:`attmask_ray.metrics` (e.g. knn_top1, knn_top1_k20, fewshot_nu5_mean,
  linear_top1, the diagnostics of attmask_ray.diagnostics.DIAGNOSTICS), writer-specific
  columns (the sweep: status, error, member, member_knob, checkpoint_kept; floors: floor) and
  the trial's resolved config as ``config/<dotted key>`` columns (e.g. ``config/mask.strategy``).
Sources: "online" (k-NN during training), "train" (an epoch end without k-NN: loss and
collapse diagnostics), "final_eval" (the sweep's evaluation tasks on the final checkpoint),
"none" (a trial without any report), an evaluation task name ("knn", "fewshot", "linear",
"masked": python -m attmask_ray.evaluate) and "floor" (python -m attmask_ray.floors).
:func:`write_results` is the only writer: one atomic write (a temporary file, then a rename),
so a crash never loses rows already written. :func:`read_results` upgrades tables written
before these rules (legacy metric names, integer epochs, rows without a writer).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from attmask_ray.config import ExperimentConfig, flatten
from attmask_ray.metrics import canonical

FILENAME = "results.parquet"
CONFIG_PREFIX = "config/"
WRITERS = ("sweep", "evaluate", "floors")


class ResultsError(ValueError):
    """A results table that exists but cannot be read (one line, with the fix)."""


def config_columns(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as ``config/<dotted key>`` columns (tuples as strings, Parquet-friendly)."""
    return {f"{CONFIG_PREFIX}{k}": (str(v) if isinstance(v, tuple) else v) for k, v in flatten(cfg).items()}


@dataclass(frozen=True)
class ResultRow:
    """One row of results.parquet (see the module docstring for the columns)."""

    trial_id: str
    source: str
    writer: str  # one of WRITERS
    epoch: float = math.nan
    step: int | None = None
    checkpoint: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)  # metric name -> value
    config: Mapping[str, Any] = field(default_factory=dict)  # config_columns(...) of the run
    info: Mapping[str, Any] = field(default_factory=dict)  # writer-specific columns (status, error, member, floor, ...)

    def record(self) -> dict[str, Any]:
        """The row as a flat dict of columns (metric names canonical, epoch a float)."""
        return {"trial_id": self.trial_id, "epoch": float(self.epoch), "step": self.step, "source": self.source,
                "checkpoint": self.checkpoint, "writer": self.writer,
                **{canonical(k): v for k, v in self.metrics.items()}, **self.config, **self.info}


def table_path(path: str | Path) -> Path:
    """``path`` itself when it names a .parquet file, else ``path/results.parquet``."""
    path = Path(path)
    return path if path.suffix == ".parquet" else path / FILENAME


def write_results(path: str | Path, rows: Iterable[ResultRow], *, replace_writer: str | None = None) -> Path:
    """Add ``rows`` to the table at ``path`` (an experiment folder or its results.parquet) in one
    atomic write; returns the table's path. ``replace_writer``: drop that writer's earlier rows
    first (a sweep rewrites its own rows and keeps those of evaluate and floors)."""
    path = table_path(path)
    new = pd.DataFrame([row.record() for row in rows])
    if new.empty and replace_writer is None:
        return path
    frames = []
    if path.exists():
        old = read_results(path)
        frames.append(old[old["writer"] != replace_writer] if replace_writer is not None else old)
    frames.append(new)
    frame = pd.concat(frames, ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_results(path: str | Path) -> pd.DataFrame:
    """Read an experiment's results table (upgraded, :func:`upgrade`); clear error when it is missing."""
    path = table_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no results table at {path}: run a sweep (python -m attmask_ray.sweep ...) or an evaluation first")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise ResultsError(f"{path} is not a readable parquet table ({type(exc).__name__}); restore it from a copy "
                           "or move it away (a sweep rewrites it from Tune's results, with --resume)") from None
    return upgrade(frame)


def upgrade(frame: pd.DataFrame) -> pd.DataFrame:
    """A table as this code writes it, from one written before: legacy metric names
    (``knn_k20_top1``, the final evaluation's) merged into their canonical column
    (``knn_top1_k20``), ``epoch`` as float (evaluate wrote ints) and a ``writer`` on every row
    (evaluate and floors wrote none: "floors" for source "floor", else "evaluate")."""
    frame = frame.copy()
    for column in list(frame.columns):
        name = canonical(column)
        if name != column:
            frame[name] = frame[name].combine_first(frame[column]) if name in frame.columns else frame[column]
            frame = frame.drop(columns=column)
    if "epoch" in frame.columns:
        frame["epoch"] = frame["epoch"].astype(float)
    source = frame["source"] if "source" in frame.columns else pd.Series("", index=frame.index)
    guessed = source.map(lambda s: "floors" if s == "floor" else "evaluate").astype(object)
    frame["writer"] = frame["writer"].astype(object).fillna(guessed) if "writer" in frame.columns else guessed
    return frame
