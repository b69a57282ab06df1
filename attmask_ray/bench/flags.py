"""Flag checks shared by the benchmarks: a bad value is one ``error:`` line before any work."""

from __future__ import annotations

import argparse
from typing import Iterable, Mapping


class BenchError(ValueError):
    """A benchmark flag that cannot work (one line for the user)."""


def check_minimums(args: argparse.Namespace, minimums: Mapping[str, int | float]) -> None:
    """Each ``args.<name>`` is at least ``minimums[name]`` (names as attributes: ``n_local``)."""
    for name, low in minimums.items():
        value = getattr(args, name)
        if value < low:
            raise BenchError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def check_choices(flag: str, values: Iterable[str], allowed: Iterable[str]) -> None:
    """Every comma-list entry of ``flag`` is one of ``allowed``."""
    allowed = tuple(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise BenchError(f"{flag} {','.join(bad)} unknown; choose from {', '.join(allowed)}")


def check_device(device: str) -> None:
    from attmask_ray.devices import device_problem

    if problem := device_problem(device):
        raise BenchError(problem)
