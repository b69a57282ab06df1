"""The one error type of the evaluations."""

from __future__ import annotations


class EvalError(ValueError):
    """Evaluation input is wrong (empty split, class mismatch, bad option); one line naming the fix."""
