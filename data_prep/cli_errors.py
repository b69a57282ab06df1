"""How the data_prep commands end on a user error: one ``error: ...`` line on stderr, exit code 2."""

from __future__ import annotations

import sys
from typing import Callable

from data_prep.errors import DataError


def run_reporting_errors(action: Callable[[], object]) -> int:
    """Run ``action``; a DataError becomes one line on stderr and exit code 2, success exit code 0."""
    try:
        action()
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
