"""A trial whose metric is the mean over several runs (e.g. over masking strategies).

A sweep's ``TuneSpec.objective_over = {"mask.strategy": ["attmask_high", "block"]}`` makes
every trial train one run per value, one after the other, with the same sampled knobs and
seed. Each run's reports reach Tune tagged with ``member`` and its own k-NN values as
``member_<key>``; the objective keys (``knn_*``) are reported only once every member has
reported the same epoch, as the mean over members. So the searcher and ASHA see the mean
(ASHA can stop a trial while its last member trains), and results.parquet keeps every
member's curve. A recipe is then chosen for the strategies together, never per strategy.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.tune.integration.ray_train import TuneReportCallback

OBJECTIVE_PREFIX = "knn_"


def is_objective_key(key: str) -> bool:
    """Metrics averaged over members (the online k-NN values)."""
    return key.startswith(OBJECTIVE_PREFIX)


def member_row(row: dict[str, Any], label: str, knob: str, mean: dict[str, float] | None) -> dict[str, Any]:
    """A member run's report as Tune sees it: its own objective values renamed ``member_<key>``,
    the mean over members (when known) as the objective keys, and the member's label and knob."""
    own = {f"member_{k}": v for k, v in row.items() if is_objective_key(k)}
    rest = {k: v for k, v in row.items() if not is_objective_key(k)}
    return rest | own | (mean or {}) | {"member": label, "member_knob": knob}


def mean_objective(history: dict[str, dict[float, dict[str, float]]], labels: list[str],
                   epoch: float) -> dict[str, float]:
    """Mean of the objective keys at ``epoch`` over all ``labels``; {} until every member has it.

    history: {label: {epoch: {key: value}}}.
    """
    rows = [history.get(label, {}).get(round(epoch, 6)) for label in labels]
    if any(r is None for r in rows):
        return {}
    keys = set.intersection(*(set(r) for r in rows))
    return {k: sum(r[k] for r in rows) / len(rows) for k in sorted(keys)}


@ray.remote(num_cpus=0)
class ObjectiveHistory:
    """Per-member objective values by epoch, held for the lifetime of one trial."""

    def __init__(self) -> None:
        self.history: dict[str, dict[float, dict[str, float]]] = {}
        self.latest: dict[str, float] = {}

    def add(self, label: str, labels: list[str], epoch: float, values: dict[str, float]) -> dict[str, float]:
        if values:
            self.history.setdefault(label, {})[round(epoch, 6)] = values
        mean = mean_objective(self.history, labels, epoch) if values else {}
        if mean:
            self.latest = mean
        return mean

    def last_mean(self) -> dict[str, float]:
        return self.latest


class MemberReportCallback(TuneReportCallback):
    """TuneReportCallback for one member run: own k-NN as ``member_*``, mean as ``knn_*``."""

    def __init__(self, history: Any, label: str, labels: list[str], knob: str) -> None:
        super().__init__()
        self.history, self.label, self.labels, self.knob = history, label, list(labels), knob

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        row = metrics[0]
        own = {k: float(v) for k, v in row.items() if is_objective_key(k) and isinstance(v, (int, float))}
        mean = ray.get(self.history.add.remote(self.label, self.labels, float(row.get("epoch", -1.0)), own))
        super().after_report(run_context, [member_row(row, self.label, self.knob, mean), *metrics[1:]], checkpoint)
