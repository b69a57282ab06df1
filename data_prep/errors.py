"""The one error type of datasets on disk, shared by the converters (data_prep) and the loaders
(attmask_ray.data, which imports it from here: the data layer reads what data_prep writes)."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset on disk or a data option is wrong; the message is one line naming the file and the fix."""
