"""The experiment's results journal: ``<experiment>/results_journal.jsonl``.

Tune's ``Tuner.restore`` restarts a function trainable, and with it the trial's
result.json / progress.csv (and so ``Result.metrics_dataframe``) at the resumed step: every
report made before a crash would be lost. The sweep driver therefore appends every trial
result to this journal as it arrives, one JSON object per line, flushed and fsynced::

    {"trial_id": "<trial dir name>", "config": {sampled knob: value}, "result": {metric: value}, "time": <unix s>}

``result`` keeps the result's top-level numbers and strings (nested values such as Tune's
``config`` are dropped). The journal only grows; a line cut short by a kill is skipped when
read. :func:`attmask_ray.sweep.results.result_rows` merges it with the ResultGrid.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

JOURNAL = "results_journal.jsonl"


def journal_path(exp_dir: str | Path) -> Path:
    """Where the journal of the experiment folder ``exp_dir`` lives."""
    return Path(exp_dir) / JOURNAL


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str)) and not isinstance(v, bool)


def _plain(v: Any) -> Any:
    """A JSON-safe copy of a sampled config value (tuples as lists, others as their str)."""
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return str(v)


def journal_record(trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """One journal line: the trial, its sampled config and the result's scalars."""
    return {"trial_id": trial_id,
            "config": {k: _plain(v) for k, v in config.items()},
            "result": {k: v for k, v in result.items() if _scalar(v)},
            "time": time.time()}


def append_record(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record as a JSON line and make it durable (flush + fsync) before returning."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, allow_nan=True, separators=(",", ":")) + "\n"
    with open(path, "ab") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            line = "\n" + line  # a line cut short by a kill stays alone on its (skipped) line
        f.write(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_journal(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a journal in write order; none when it does not exist; torn lines skipped."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:  # the last line of a killed driver may be cut short
                continue
            if isinstance(record, dict) and isinstance(record.get("result"), dict) and record.get("trial_id"):
                yield record
