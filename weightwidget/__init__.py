"""weightwidget: curate per-sample training weights interactively in Jupyter."""

from __future__ import annotations

from .errors import FilterError, StoreCorruptedError, StoreError, StoreFormatError
from .table import WeightTable

__version__ = "0.1.0"

__all__ = [
    "FilterError",
    "StoreCorruptedError",
    "StoreError",
    "StoreFormatError",
    "WeightTable",
    "__version__",
]
