"""Sweep files (config-as-code): load one, resolve its base config, validate its search space.

A sweep module exports ``get_config(arg: str = "") -> ExperimentConfig``,
``search_space(trial) -> dict | None`` (Optuna define-by-run; parameter names are dotted
config keys such as ``mask.strategy`` or ``seed``) and ``TUNE = TuneSpec(...)``.
Importing it must run nothing. ``SWEEP.py[:preset,key=value,...]``: parts without '='
are passed to ``get_config`` and must be listed in the module's ``PRESETS`` tuple (a module
without one takes none); ``key=value`` parts override the base config.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from attmask_ray.config import ConfigError, ExperimentConfig, apply_overrides, flatten, parse_overrides, to_dict
from attmask_ray.train.trial import knob_values
from attmask_ray.tune_spec import TuneSpec


@dataclass
class Sweep:
    path: Path
    module: ModuleType
    config: ExperimentConfig
    space: Callable[[Any], dict[str, Any] | None] | None
    spec: TuneSpec
    preset: str

    @property
    def name(self) -> str:
        return self.path.stem


def split_target(target: str) -> tuple[str, str]:
    """'sweeps/x.py:a=1,b' -> ('sweeps/x.py', 'a=1,b')."""
    idx = target.find(".py:")
    if idx >= 0:
        return target[: idx + 3], target[idx + 4:]
    return target, ""


def load_module(path: Path) -> ModuleType:
    if not path.exists():
        raise ConfigError(f"sweep file {path} does not exist; pass a module from sweeps/ (e.g. sweeps/smoke.py)")
    if path.suffix != ".py":
        raise ConfigError(f"sweep file {path} must be a Python module (.py)")
    spec = importlib.util.spec_from_file_location(f"attmask_sweep_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError(f"sweep file {path} has a syntax error at line {exc.lineno}: {exc.msg}; fix the file") from None
    except Exception as exc:  # noqa: BLE001 - anything a sweep module raises on import is one line
        raise ConfigError(f"sweep file {path} failed to import: {_one_line(exc)}; fix the file "
                          "(importing it must only define get_config, search_space and TUNE)") from None
    try:  # Tune pickles the search space with its state: by value, so --resume needs no import path
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except ImportError:
        pass
    return module


def load_sweep(target: str) -> Sweep:
    """Load and fully validate a sweep target; raises ConfigError with one clear line."""
    file, rest = split_target(target)
    path = Path(file)
    module = load_module(path)
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"{path} must define get_config(arg: str = '') -> ExperimentConfig")
    parts = [p for p in _split_parts(rest) if p]
    presets = [p for p in parts if "=" not in p]
    overrides = parse_overrides(",".join(p for p in parts if "=" in p))
    preset = ",".join(presets)
    allowed = tuple(getattr(module, "PRESETS", ()))
    unknown = [p for p in presets if p not in allowed]
    if unknown:
        offer = f"its presets: {', '.join(allowed)}" if allowed else "it declares no PRESETS"
        raise ConfigError(f"{path}: unknown preset {unknown[0]!r} ({offer}); overrides need key=value")
    try:
        cfg = module.get_config(preset)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing get_config is the sweep file's bug: one line
        raise ConfigError(f"{path}: get_config({preset!r}) raised {_one_line(exc)}; fix the sweep file") from None
    if not isinstance(cfg, ExperimentConfig):
        raise ConfigError(f"{path}: get_config() must return an ExperimentConfig, got {type(cfg).__name__}")
    cfg = apply_overrides(cfg, overrides)
    spec = getattr(module, "TUNE", TuneSpec())
    if not isinstance(spec, TuneSpec):
        raise ConfigError(f"{path}: TUNE must be a TuneSpec, got {type(spec).__name__}")
    space = getattr(module, "search_space", None)
    if space is None and spec.num_samples > 1:
        raise ConfigError(f"{path} defines no search_space, so its {spec.num_samples} trials would train the same "
                          "config; add search_space(trial) (e.g. over seed) or set TUNE.num_samples=1")
    sweep = Sweep(path, module, cfg, space, spec, preset)
    validate_spec(sweep)
    validate_space(sweep)
    return sweep


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def validate_spec(sweep: Sweep) -> None:
    """The TuneSpec's metric is one the trials report and its eval_tasks exist (a typo would
    leave the searcher and ASHA without a signal, or fail only after training)."""
    from attmask_ray.eval.tasks import TASKS
    from attmask_ray.train.loop import reported_metrics

    spec = sweep.spec
    bad = [t for t in spec.eval_tasks if t not in TASKS]
    if bad:
        raise ConfigError(f"{sweep.path}: TuneSpec.eval_tasks {bad} unknown; choose from {', '.join(TASKS)}")
    known = reported_metrics(sweep.config)
    final_eval = bool(spec.eval_tasks) and spec.metric.startswith("eval/")
    if spec.metric not in known and not final_eval:
        import difflib

        close = difflib.get_close_matches(spec.metric, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"{sweep.path}: TuneSpec.metric {spec.metric!r} is not reported by the trials; {hint}"
                          f"reported: {', '.join(known)} (and eval/<metric> with eval_tasks)")


def _split_parts(text: str) -> list[str]:
    out, depth, buf = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            out.append(buf.strip())
            buf = ""
        else:
            buf += ch
    out.append(buf.strip())
    return out


def sample_points(sweep: Sweep, n: int = 8) -> list[dict[str, Any]]:
    """Parameter sets the search can produce: every grid point, or ``n`` random draws."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sweep.space is None:
        return [{}]
    if sweep.spec.sampler == "grid":
        keys = list(sweep.spec.grid)
        points = [dict(zip(keys, values)) for values in itertools.product(*sweep.spec.grid.values())]
        for p in points:  # the define-by-run must accept every grid point
            trial = optuna.trial.FixedTrial(p)
            try:
                consts = sweep.space(trial) or {}
            except ValueError as exc:  # optuna: a grid value that is not among the choices
                raise ConfigError(f"{sweep.path}: TuneSpec.grid point {p} is not a point of search_space "
                                  f"({_one_line(exc)}); make the grid values choices of search_space") from None
            p.update(consts)
        return points
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sweep.spec.seed))
    for point in sweep.spec.points_to_evaluate:  # the searcher runs these first: they must be points of the space
        study.enqueue_trial(dict(point))
    points, searched = [], []
    bad = ConfigError(f"{sweep.path}: a TuneSpec.points_to_evaluate point is not a point of the search space "
                      "(a knob is missing or extra, or a value is not among its choices / outside its range)")
    for _ in range(n + len(sweep.spec.points_to_evaluate)):
        trial = study.ask()
        try:
            consts = sweep.space(trial) or {}
        except ValueError:  # optuna: an enqueued value that is not among the choices
            raise bad from None
        ranges = {k: d for k, d in trial.distributions.items() if hasattr(d, "low")}
        if any(not ranges[k].low <= v <= ranges[k].high for k, v in trial.params.items() if k in ranges):
            raise bad  # optuna keeps an enqueued value outside a float/int range
        searched.append(dict(trial.params))
        points.append({**trial.params, **consts})
    for point, drawn in zip(sweep.spec.points_to_evaluate, searched):
        if dict(point) != drawn:
            raise ConfigError(f"{bad} {dict(point)}")
    return points


def validate_space(sweep: Sweep) -> None:
    """Every knob is a config key and every sampled point gives a valid config."""
    valid = flatten(sweep.config)
    for point in sample_points(sweep):
        for key in point:
            if key not in valid:
                import difflib

                close = difflib.get_close_matches(key, list(valid), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{sweep.path}: search space knob {key!r} is not a config key{hint}")
        try:
            cfg = apply_overrides(sweep.config, knob_values(point))
        except ConfigError as exc:
            raise ConfigError(f"{sweep.path}: search point {point} is invalid: {exc}") from None
        for knob, values in sweep.spec.objective_over.items():
            if knob in point:
                raise ConfigError(f"{sweep.path}: {knob!r} is both searched and in TuneSpec.objective_over; keep one")
            for value in values:
                try:
                    apply_overrides(cfg, knob_values({knob: value}))
                except ConfigError as exc:
                    raise ConfigError(f"{sweep.path}: TuneSpec.objective_over {knob}={value!r} is invalid: {exc}") from None


def describe_space(sweep: Sweep) -> dict[str, str]:
    """knob -> human description of its values (for the dry-run table)."""
    import optuna

    if sweep.space is None:
        return {}
    if sweep.spec.sampler == "grid":
        return {k: ", ".join(map(str, v)) + "  (grid)" for k, v in sweep.spec.grid.items()}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    sweep.space(trial)
    out = {}
    for name, dist in trial.distributions.items():
        if hasattr(dist, "choices"):
            out[name] = ", ".join(map(str, dist.choices))
        else:
            out[name] = f"[{dist.low}, {dist.high}]" + (" log" if getattr(dist, "log", False) else "")
    return out


DATA_PATH_KEYS = ("train_path", "val_path", "knn_train_path")


def with_data_root(sweep: Sweep, root: str | Path) -> Sweep:
    """The sweep with its relative data paths resolved against ``root`` instead of the
    working directory (``--data-root``: a ``ray job submit`` job runs in an uploaded copy of
    the project that holds no git-ignored data). Absolute paths and URIs stay as they are."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"--data-root {root}: not a directory; give the folder the config's relative data paths "
                          "start from (e.g. the project checkout holding data/)")
    base = base.resolve()
    data = sweep.config.data
    overrides = {f"data.{key}": str(base / value) for key in DATA_PATH_KEYS
                 if (value := getattr(data, key)) and "://" not in value and not Path(value).is_absolute()}
    if not overrides:
        return sweep
    return Sweep(sweep.path, sweep.module, apply_overrides(sweep.config, overrides), sweep.space, sweep.spec, sweep.preset)


def base_dict(sweep: Sweep) -> dict[str, Any]:
    """The base config for trials, with relative data paths made absolute (workers run elsewhere)."""
    data = to_dict(sweep.config)
    for key in DATA_PATH_KEYS:
        value = data["data"].get(key)
        if value and "://" not in value and not Path(value).is_absolute():
            data["data"][key] = str(Path(value).resolve())
    return data
