"""How a sweep is searched: metric, mode, samples, concurrency, sampler and scheduler.

A grid sweep names its values once, in ``grid``: without a ``search_space`` in the sweep file
the grid is the search space (one categorical knob per key, attmask_ray.sweep.space.GridSpace).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from attmask_ray.config import _check


@dataclass(frozen=True)
class TuneSpec:
    metric: str = "knn_top1"  # reported by the online k-NN at eval_every epochs and at the end
    mode: str = "max"
    num_samples: int = 8  # trials (a grid sampler runs each grid point once per sample count)
    max_concurrent: int = 2  # upper bound; the driver lowers it to what the cluster can hold
    sampler: str = "tpe"  # Optuna sampler: "tpe", "random" or "grid" (grid needs `grid`)
    grid: dict[str, list[Any]] = field(default_factory=dict)  # knob -> values, for sampler="grid" (the search space when the file defines none)
    scheduler: str | None = None  # None (run every trial to the end) or "asha"
    grace_period: int = 1  # ASHA: epochs before a trial can be stopped
    reduction_factor: int = 3  # ASHA
    seed: int = 0  # Optuna sampler seed
    eval_tasks: tuple[str, ...] = ()  # evaluations run on each trial's final checkpoint, e.g. ("knn", "fewshot")
    points_to_evaluate: tuple[dict[str, Any], ...] = ()  # first trials of a tpe/random search (e.g. a known-good point); each a full point of the space
    objective_over: dict[str, list[Any]] = field(default_factory=dict)  # {knob: [values]}: each trial trains once per value; the metric is their mean (attmask_ray/sweep/objective.py)

    def __post_init__(self) -> None:
        _check(self.mode in ("max", "min"), f"TuneSpec.mode must be 'max' or 'min', got {self.mode!r}")
        _check(self.num_samples >= 1, f"TuneSpec.num_samples must be >= 1, got {self.num_samples}")
        _check(self.max_concurrent >= 1, f"TuneSpec.max_concurrent must be >= 1, got {self.max_concurrent}")
        _check(self.sampler in ("tpe", "random", "grid"), f"TuneSpec.sampler must be tpe, random or grid, got {self.sampler!r}")
        _check(self.sampler != "grid" or bool(self.grid), "TuneSpec.sampler='grid' needs a non-empty grid={knob: [values]}")
        _check(self.scheduler in (None, "asha"), f"TuneSpec.scheduler must be None or 'asha', got {self.scheduler!r}")
        _check(self.grace_period >= 1 and self.reduction_factor >= 2, "TuneSpec.grace_period >= 1 and reduction_factor >= 2")
        _check(not self.points_to_evaluate or self.sampler != "grid",
               "TuneSpec.points_to_evaluate is for tpe/random samplers; a grid already lists its points")
        _check(len(self.objective_over) <= 1 and all(len(v) >= 2 for v in self.objective_over.values()),
               f"TuneSpec.objective_over takes one knob with >= 2 values, got {self.objective_over!r}")
        _check(not self.objective_over or self.metric.startswith("knn_"),
               f"TuneSpec.objective_over averages the k-NN metrics; metric must start with 'knn_', got {self.metric!r}")

    @property
    def grid_size(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n
