"""weightwidget: curate per-sample training weights interactively in Jupyter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FilterError, StoreCorruptedError, StoreError, StoreFormatError
from .table import WeightTable

if TYPE_CHECKING:  # the lazy names below, for type checkers and IDEs
    from .curation import find_label_issues, out_of_fold, suggest_to_label
    from .metrics import collect_metrics
    from .widget import WeightWidget

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
    "find_label_issues",
    "out_of_fold",
    "suggest_to_label",
]

_LAZY = {
    "WeightWidget": "widget",
    "collect_metrics": "metrics",
    "find_label_issues": "curation",
    "out_of_fold": "curation",
    "suggest_to_label": "curation",
}


def __getattr__(name: str) -> Any:
    # lazy: `import weightwidget` stays light (no anywidget/traitlets until needed)
    # (cleanlab is imported by find_label_issues itself, when called)
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module 'weightwidget' has no attribute {name!r}")
