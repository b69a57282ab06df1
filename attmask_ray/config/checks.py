"""Config errors and the small checks every section's ``__post_init__`` uses."""

from __future__ import annotations

import re


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message is one line naming the fix."""


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def _unit_range(name: str, pair: tuple[float, float]) -> None:
    _check(len(pair) == 2, f"{name} must be a pair (a, b), got {pair!r}")
    a, b = pair
    _check(0.0 <= a <= b <= 1.0, f"{name} must satisfy 0 <= a <= b <= 1, got {pair!r}")


def is_plain_name(name: str) -> bool:
    """An experiment name usable as one folder name: letters, digits, '_', '-', '.'."""
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-]+", name))

