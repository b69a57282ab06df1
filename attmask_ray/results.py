"""The experiment results table: ``<experiment>/results.parquet``.

One row per (trial, evaluation) and per epoch end of training. Columns:
  trial_id (str), epoch (int), step (int), source ("online" k-NN during training, "train"
  for an epoch end without k-NN (loss and collapse diagnostics only), or the
  evaluation task name, e.g. "knn", "fewshot", "linear", "masked"), checkpoint (str path
  or ""), metric columns (e.g. knn_top1, knn_top5, fewshot_nu5_mean, linear_top1, the
  diagnostics of attmask_ray.diagnostics.DIAGNOSTICS, ...),
  and the trial's resolved config as ``config/<dotted key>`` columns
  (e.g. ``config/mask.strategy``, ``config/seed``).
Appends are atomic (write a temporary file, then rename): a crash never loses rows
already written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from attmask_ray.config import ExperimentConfig, flatten

FILENAME = "results.parquet"


class ResultsError(ValueError):
    """A results table that exists but cannot be read (one line, with the fix)."""
CONFIG_PREFIX = "config/"


def config_columns(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as ``config/<dotted key>`` columns (tuples as strings, Parquet-friendly)."""
    return {f"{CONFIG_PREFIX}{k}": (str(v) if isinstance(v, tuple) else v) for k, v in flatten(cfg).items()}


def append_results(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Append rows to ``path`` (a results.parquet file or its experiment folder)."""
    path = Path(path)
    if path.suffix != ".parquet":
        path = path / FILENAME
    new = pd.DataFrame(list(rows))
    if new.empty:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.concat([read_results(path), new], ignore_index=True) if path.exists() else new
    tmp = path.with_suffix(".parquet.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_results(path: str | Path) -> pd.DataFrame:
    """Read an experiment's results table; clear error when it is missing."""
    path = Path(path)
    if path.suffix != ".parquet":
        path = path / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"no results table at {path}: run a sweep (python -m attmask_ray.sweep ...) or an evaluation first")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise ResultsError(f"{path} is not a readable parquet table ({type(exc).__name__}); restore it from a copy "
                           "or move it away (a sweep rewrites it from Tune's results, with --resume)") from None
