"""Labels of a torch ``Dataset``: from attributes when it has them, else by reading items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def torch_labels(
    dataset: Any, *, label_fn: Callable[[Any], Any] | None, progress: bool
) -> np.ndarray:
    if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
        raise TypeError(
            "from_torch_dataset needs a map-style dataset (with __len__ and __getitem__); "
            f"got {type(dataset).__name__}"
        )
    if label_fn is None:
        fast = fast_labels(dataset)
        if fast is not None:
            return fast
    from tqdm.auto import tqdm

    n = len(dataset)
    labels = []
    for i in tqdm(range(n), desc="reading labels", disable=not progress, unit="sample"):
        item = dataset[i]
        y = label_fn(item) if label_fn is not None else _second(item, i)
        if hasattr(y, "item"):
            y = y.item()
        labels.append(y)
    return np.asarray(labels)


def _second(item: Any, i: int) -> Any:
    try:
        return item[1]
    except (TypeError, IndexError, KeyError) as exc:
        raise TypeError(
            f"item {i} of the dataset is not an (x, y) pair; pass label_fn= to say where its "
            "label is"
        ) from exc


def fast_labels(dataset: Any) -> np.ndarray | None:
    """Labels from attributes, through Subset and ConcatDataset, without reading items."""
    inner = getattr(dataset, "dataset", None)
    indices = getattr(dataset, "indices", None)
    if inner is not None and indices is not None:  # torch.utils.data.Subset
        parent = fast_labels(inner)
        if parent is None:
            return None
        return parent[np.asarray(indices, dtype=np.int64)]
    parts = getattr(dataset, "datasets", None)
    if parts is not None and hasattr(dataset, "cumulative_sizes"):  # ConcatDataset
        got = [fast_labels(d) for d in parts]
        if any(g is None for g in got):
            return None
        return np.concatenate(got)  # type: ignore[arg-type]
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is None or callable(values):
            continue
        if hasattr(values, "detach"):
            values = values.detach().cpu().numpy()
        arr = np.asarray(values)
        if arr.ndim == 1 and len(arr) == len(dataset):
            return arr
    return None
