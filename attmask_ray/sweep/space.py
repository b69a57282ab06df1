"""A sweep's search space: the Optuna define-by-run over dotted config keys, and its points.

The sweep file's ``search_space(trial)`` or ``search_space(trial, cfg)`` (``cfg``: the resolved
base config, so knob values can follow it, e.g. attention layers of the config's depth); for a
grid sampler without one, the grid itself (:class:`GridSpace`). Sampled values become config
values with :func:`knob_values`.
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from attmask_ray.config import ConfigError, ExperimentConfig, parse_value
from attmask_ray.sweep.spec import TuneSpec

Space = Callable[[Any], "dict[str, Any] | None"]  # optuna trial -> constants (dotted keys) or None


@dataclass(frozen=True)
class GridSpace:
    """The define-by-run of a grid sweep: one categorical knob per ``TuneSpec.grid`` key."""

    grid: dict[str, list[Any]]

    def __call__(self, trial: Any) -> None:
        for knob, values in self.grid.items():
            trial.suggest_categorical(knob, values)


@dataclass(frozen=True)
class ConfigSpace:
    """A sweep file's ``search_space(trial, cfg)`` with the resolved base config bound."""

    define: Callable[[Any, ExperimentConfig], "dict[str, Any] | None"]
    cfg: ExperimentConfig

    def __call__(self, trial: Any) -> dict[str, Any] | None:
        return self.define(trial, self.cfg)


def search_space_of(module: ModuleType, cfg: ExperimentConfig, spec: TuneSpec) -> Space | None:
    """The define-by-run Optuna calls with a trial: the module's ``search_space`` (bound to ``cfg``
    when it takes two parameters), else the grid of a grid sampler, else None."""
    define = getattr(module, "search_space", None)
    if define is None:
        return GridSpace(dict(spec.grid)) if spec.sampler == "grid" else None
    try:
        takes_config = len(inspect.signature(define).parameters) >= 2
    except (TypeError, ValueError):  # not introspectable: called with the trial only
        takes_config = False
    return ConfigSpace(define, cfg) if takes_config else define


def knob_values(sampled: dict[str, Any]) -> dict[str, Any]:
    """Sampled knobs as config values: lists -> tuples, "(0.1, 0.3)"-style strings -> tuples.

    Optuna categorical choices must be scalars, so tuple knobs such as mask.pred_ratio are
    written as strings in search spaces.
    """
    out = {}
    for k, v in sampled.items():
        if isinstance(v, str) and v.strip().startswith(("(", "[")):
            v = parse_value(v)
        out[k] = tuple(v) if isinstance(v, list) else v
    return out


def one_line(exc: BaseException) -> str:
    """An exception as one line: ``Type: message`` with the message's whitespace folded."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def sample_points(where: Any, space: Space | None, spec: TuneSpec, n: int = 8) -> list[dict[str, Any]]:
    """Parameter sets the search can produce: every grid point, or ``n`` random draws (after the
    ``points_to_evaluate``). ``where`` names the sweep in error messages."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if space is None:
        return [{}]
    if spec.sampler == "grid":
        keys = list(spec.grid)
        points = [dict(zip(keys, values)) for values in itertools.product(*spec.grid.values())]
        for p in points:  # the define-by-run must accept every grid point
            trial = optuna.trial.FixedTrial(p)
            try:
                consts = space(trial) or {}
            except ValueError as exc:  # optuna: a grid value that is not among the choices
                raise ConfigError(f"{where}: TuneSpec.grid point {p} is not a point of search_space "
                                  f"({one_line(exc)}); make the grid values choices of search_space") from None
            p.update(consts)
        return points
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.seed))
    for point in spec.points_to_evaluate:  # the searcher runs these first: they must be points of the space
        study.enqueue_trial(dict(point))
    points, searched = [], []
    bad = ConfigError(f"{where}: a TuneSpec.points_to_evaluate point is not a point of the search space "
                      "(a knob is missing or extra, or a value is not among its choices / outside its range)")
    for _ in range(n + len(spec.points_to_evaluate)):
        trial = study.ask()
        try:
            consts = space(trial) or {}
        except ValueError:  # optuna: an enqueued value that is not among the choices
            raise bad from None
        ranges = {k: d for k, d in trial.distributions.items() if hasattr(d, "low")}
        if any(not ranges[k].low <= v <= ranges[k].high for k, v in trial.params.items() if k in ranges):
            raise bad  # optuna keeps an enqueued value outside a float/int range
        searched.append(dict(trial.params))
        points.append({**trial.params, **consts})
    for point, drawn in zip(spec.points_to_evaluate, searched):
        if dict(point) != drawn:
            raise ConfigError(f"{bad} {dict(point)}")
    return points


def describe_space(space: Space | None, spec: TuneSpec) -> dict[str, str]:
    """knob -> human description of its values (for the dry-run table)."""
    import optuna

    if space is None:
        return {}
    if spec.sampler == "grid":
        return {k: ", ".join(map(str, v)) + "  (grid)" for k, v in spec.grid.items()}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    space(trial)
    out = {}
    for name, dist in trial.distributions.items():
        if hasattr(dist, "choices"):
            out[name] = ", ".join(map(str, dist.choices))
        else:
            out[name] = f"[{dist.low}, {dist.high}]" + (" log" if getattr(dist, "log", False) else "")
    return out
