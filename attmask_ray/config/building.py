"""Building and changing configs: nested dicts to :class:`ExperimentConfig` (unknown keys raise with a
did-you-mean), back to dicts and flat dotted columns, and dotted ``key=value`` overrides."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping

from attmask_ray.config.checks import ConfigError
from attmask_ray.config.sections import ExperimentConfig


def _hint(key: str, allowed: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to the annotated type ``tp`` or raise a one-line ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is tuple:
        if isinstance(value, (list, tuple)):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(v, args[0], where) for v in value)
            if len(value) != len(args):
                raise ConfigError(f"{where} needs {len(args)} values, got {list(value)!r}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        raise ConfigError(f"{where} must be a list/tuple, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {where!r}{_hint(key, fields)}; allowed under {prefix.rstrip('.') or 'top level'}: {', '.join(fields)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = value if isinstance(value, tp) else _build(tp, value, f"{where}.")
        else:
            kwargs[key] = _coerce(value, tp, where)
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from a nested dict; unknown keys raise ConfigError."""
    return _build(ExperimentConfig, data, "")


def to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """Nested plain dict (tuples as lists), the inverse of :func:`from_dict`."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def flatten(cfg: ExperimentConfig) -> dict[str, Any]:
    """Dotted-key view, e.g. {"mask.strategy": "attmask_high", ...}."""
    out: dict[str, Any] = {}

    def walk(d: Mapping[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = tuple(v) if isinstance(v, list) else v
    walk(to_dict(cfg), "")
    return out


def parse_value(text: str) -> Any:
    """Parse an override value from the command line: Python literals, else a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() in ("none", "null"):
            return None
        return text


def assign_dotted(data: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested config dict (sections created as needed, tuples as lists);
    returns ``data``. ``{"mask.strategy": "block"}`` sets ``data["mask"]["strategy"]``."""
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return data


def apply_overrides(cfg: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    """Return a new config with dotted-key overrides applied (values validated and coerced)."""
    valid = flatten(cfg)
    for key in overrides:
        if key not in valid:
            raise ConfigError(f"unknown config key {key!r}{_hint(key, valid)}")
    return from_dict(assign_dotted(to_dict(cfg), overrides))


def split_parts(text: str) -> list[str]:
    """``"a=1,b=(0.1, 0.3),preset"`` -> ``["a=1", "b=(0.1, 0.3)", "preset"]``: split at commas outside
    brackets, parts stripped, empty parts dropped (the one splitter of override lists)."""
    parts, depth, buf = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return [p.strip() for p in parts if p.strip()]


def parse_override(part: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, parsed value); anything without '=' raises ConfigError."""
    if "=" not in part:
        raise ConfigError(f"override {part!r} must look like key=value")
    key, value = part.split("=", 1)
    return key.strip(), parse_value(value.strip())


def parse_overrides(text: str) -> dict[str, Any]:
    """Parse ``"a.b=1,c.d=(0.1,0.3)"`` into a dict; commas inside brackets are kept."""
    return dict(parse_override(part) for part in split_parts(text))
