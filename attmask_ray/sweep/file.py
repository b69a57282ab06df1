"""Sweep files (config-as-code): load one, resolve its base config, validate its search space.

A sweep module exports ``get_config(arg: str = "") -> ExperimentConfig``, ``TUNE = TuneSpec(...)``
and, unless ``TUNE`` is a grid (whose ``grid`` is then the search space),
``search_space(trial)`` or ``search_space(trial, cfg)`` (Optuna define-by-run; parameter names
are dotted config keys such as ``mask.strategy`` or ``seed``; ``cfg`` is the resolved base
config). Importing it must run nothing. ``SWEEP.py[:preset,key=value,...]``: parts without '='
are passed to ``get_config`` and must be listed in the module's ``PRESETS`` tuple (a module
without one takes none); ``key=value`` parts override the base config.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from attmask_ray.config import (ConfigError, ExperimentConfig, apply_overrides, flatten, parse_override, split_parts,
                                to_dict)
from attmask_ray.sweep.space import Space, describe_space, knob_values, one_line, sample_points, search_space_of
from attmask_ray.sweep.spec import TuneSpec

DATA_PATH_KEYS = ("train_path", "val_path", "knn_train_path")
PATH_KEYS = tuple(f"data.{k}" for k in DATA_PATH_KEYS) + ("eval.in9_root", "eval.retrieval_path", "eval.retrieval_gallery_path")  # every dotted key holding a data path


def _relative_paths(cfg: ExperimentConfig) -> dict[str, str]:
    """{dotted key: value} of the config's data paths that are relative (not absolute, not URIs)."""
    out = {}
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value and "://" not in value and not Path(value).is_absolute():
            out[key] = value
    return out


@dataclass(frozen=True)
class Sweep:
    """A loaded, validated sweep file: its module, resolved base config and TuneSpec."""

    path: Path
    module: ModuleType
    config: ExperimentConfig
    spec: TuneSpec
    preset: str

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def space(self) -> Space | None:
        """The define-by-run Optuna calls with a trial (see :func:`~attmask_ray.sweep.space.search_space_of`)."""
        return search_space_of(self.module, self.config, self.spec)

    def sample_points(self, n: int = 8) -> list[dict[str, Any]]:
        """Parameter sets the search can produce: every grid point, or ``n`` random draws."""
        return sample_points(self.path, self.space, self.spec, n)

    def describe_space(self) -> dict[str, str]:
        """knob -> human description of its values (for the dry-run table)."""
        return describe_space(self.space, self.spec)


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
        raise ConfigError(f"sweep file {path} failed to import: {one_line(exc)}; fix the file "
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
    parts = split_parts(rest)
    presets = [p for p in parts if "=" not in p]
    overrides = dict(parse_override(p) for p in parts if "=" in p)
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
        raise ConfigError(f"{path}: get_config({preset!r}) raised {one_line(exc)}; fix the sweep file") from None
    if not isinstance(cfg, ExperimentConfig):
        raise ConfigError(f"{path}: get_config() must return an ExperimentConfig, got {type(cfg).__name__}")
    cfg = apply_overrides(cfg, overrides)
    spec = getattr(module, "TUNE", TuneSpec())
    if not isinstance(spec, TuneSpec):
        raise ConfigError(f"{path}: TUNE must be a TuneSpec, got {type(spec).__name__}")
    sweep = Sweep(path, module, cfg, spec, preset)
    if sweep.space is None and spec.num_samples > 1:
        raise ConfigError(f"{path} defines no search_space, so its {spec.num_samples} trials would train the same "
                          "config; add search_space(trial) (e.g. over seed) or set TUNE.num_samples=1")
    validate_spec(sweep)
    validate_space(sweep)
    return sweep


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


def validate_space(sweep: Sweep) -> None:
    """Every knob is a config key and every sampled point gives a valid config."""
    valid = flatten(sweep.config)
    for point in sweep.sample_points():
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


def with_data_root(sweep: Sweep, root: str | Path) -> Sweep:
    """The sweep with its relative data paths resolved against ``root`` instead of the
    working directory (``--data-root``: a ``ray job submit`` job runs in an uploaded copy of
    the project that holds no git-ignored data). Absolute paths and URIs stay as they are."""
    base = Path(root).expanduser()
    if not base.is_dir():
        raise ConfigError(f"--data-root {root}: not a directory; give the folder the config's relative data paths "
                          "start from (e.g. the project checkout holding data/)")
    base = base.resolve()
    overrides = {key: str(base / value) for key, value in _relative_paths(sweep.config).items()}
    if not overrides:
        return sweep
    return replace(sweep, config=apply_overrides(sweep.config, overrides))


def base_dict(sweep: Sweep) -> dict[str, Any]:
    """The base config for trials, with relative data paths made absolute (workers run elsewhere)."""
    data = to_dict(sweep.config)
    for key, value in _relative_paths(sweep.config).items():
        section, name = key.split(".")
        data[section][name] = str(Path(value).resolve())
    return data
