"""weightwidget: curate per-sample training weights interactively in Jupyter."""

from __future__ import annotations

from typing import Any

from .errors import FilterError, StoreCorruptedError, StoreError, StoreFormatError
from .table import WeightTable

__version__ = "0.1.0"

__all__ = [
    "FilterError",
    "StoreCorruptedError",
    "StoreError",
    "StoreFormatError",
    "WeightTable",
    "WeightWidget",
    "__version__",
    "collect_metrics",
    "read_export",
]


def __getattr__(name: str) -> Any:
    # lazy: `import weightwidget` stays light (no anywidget/traitlets until needed)
    if name == "WeightWidget":
        from .widget import WeightWidget

        return WeightWidget
    if name == "collect_metrics":
        from .metrics import collect_metrics

        return collect_metrics
    if name == "read_export":
        from .export import read_export

        return read_export
    raise AttributeError(f"module 'weightwidget' has no attribute {name!r}")
