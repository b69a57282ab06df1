"""The one error type of the data layer."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset on disk or a data option is wrong; the message is one line naming the file and the fix."""
