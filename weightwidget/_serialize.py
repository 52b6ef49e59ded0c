"""Turn table data into what the widget sends: binary pages, thumbnails, small JSON.

Pure functions over arrays and a ``WeightTable``; nothing here edits weights.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._text import as_text, is_text
from .view import class_aggregates, class_filter, class_text, quote_column

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = [
    "MAX_TEXT",
    "PREVIEW_SIZE",
    "THUMB_SIZE",
    "class_counts",
    "class_filter",
    "classes_payload",
    "encode_rows",
    "history_payload",
    "preview",
    "quote_column",
    "summary_payload",
    "thumbnails",
]

#: Longest cell text sent to the page (the full value stays in the kernel).
MAX_TEXT = 1000
#: Thumbnails are at most this many pixels on a side.
THUMB_SIZE = 32
#: A preview (the focused row's image, larger) is at most this many pixels on a side.
PREVIEW_SIZE = 256


def thumbnails(images: np.ndarray, ids: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """Small uint8 thumbnails of ``images[ids]``, shape (k, h, w, c) with c in {1, 3}.

    Larger images are subsampled by a whole stride; non-uint8 images are scaled
    to 0..255 per image (min to max), so digits stored as 0..16 stay visible.
    """
    imgs = np.asarray(images[ids])
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if imgs.ndim != 4:
        raise ValueError(
            f"image column must have shape (n, h, w) or (n, h, w, c); got {images.shape}"
        )
    if imgs.shape[3] >= 3:
        imgs = imgs[..., :3]
    elif imgs.shape[3] == 2:
        imgs = imgs[..., :1]
    step = max(1, math.ceil(max(imgs.shape[1], imgs.shape[2]) / size))
    imgs = imgs[:, ::step, ::step, :]
    if imgs.dtype == np.uint8:
        return np.ascontiguousarray(imgs)
    flt = imgs.astype(np.float32)
    flt = np.nan_to_num(flt, nan=0.0, posinf=0.0, neginf=0.0)
    lo = flt.min(axis=(1, 2, 3), keepdims=True)
    hi = flt.max(axis=(1, 2, 3), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.ascontiguousarray(((flt - lo) / span * 255.0).round().astype(np.uint8))


def preview(
    table: WeightTable, row: int, column: str, size: int = PREVIEW_SIZE
) -> tuple[dict[str, Any], list[bytes]]:
    """One row's image, at most ``size`` pixels a side, as JSON meta plus one buffer.

    The pixels are uint8 (height, width, channels), scaled like :func:`thumbnails`;
    ``label`` is the row's label as the page spells classes (None: unlabelled).

    Raises
    ------
    ValueError
        When ``column`` is not an image column of the table.
    """
    if column not in table.columns or table.column_kind(column) != "image":
        images = [c for c in table.columns if table.column_kind(c) == "image"]
        raise ValueError(
            f"column {column[:100]!r} is not an image column; "
            + (f"image columns: {images}" if images else "this table has no image column")
        )
    img = thumbnails(table.column(column), np.array([row], dtype=np.int64), size)[0]
    code = int(table.label_codes[row])
    meta = {
        "row": int(row),
        "column": column,
        "label": None if code < 0 else class_text(table.classes[code]),
        "buffer": 0,
        "height": int(img.shape[0]),
        "width": int(img.shape[1]),
        "channels": int(img.shape[2]),
    }
    return meta, [img.tobytes()]


def _strings(values: Any, ids: np.ndarray) -> list[str | None]:
    if is_text(values):  # only the page's rows become Python strs (taken in Arrow)
        texts = as_text(values).strings(ids)
    else:
        texts = [None if v is None else str(v) for v in np.asarray(values, dtype=object)[ids]]
    return [t if t is None or len(t) <= MAX_TEXT else t[: MAX_TEXT - 1] + "…" for t in texts]


def encode_rows(
    table: WeightTable, ids: np.ndarray, columns: list[dict[str, str]]
) -> tuple[dict[str, Any], list[bytes]]:
    """Encode the rows ``ids`` of ``columns`` as JSON meta plus binary buffers.

    Numeric columns (and the row ids) travel as little-endian float64, bools as
    uint8, images as uint8 thumbnails; strings go in the JSON part (as text).

    Returns
    -------
    meta : dict
        ``{"ids": buffer index, "columns": [...]}``.
    buffers : list of bytes
    """
    ids = np.asarray(ids, dtype=np.int64)
    buffers: list[bytes] = [ids.astype("<f8").tobytes()]
    out: list[dict[str, Any]] = []
    for col in columns:
        name, kind, role = col["name"], col["kind"], col["role"]
        if role == "row":
            out.append({"name": name, "kind": "numeric", "buffer": 0, "dtype": "float64"})
            continue
        values = table.weights if role == "weight" else table.column(name)
        if kind == "string":
            out.append({"name": name, "kind": "string", "values": _strings(values, ids)})
        elif kind == "image":
            thumbs = thumbnails(values, ids)
            out.append(
                {
                    "name": name,
                    "kind": "image",
                    "buffer": len(buffers),
                    "height": int(thumbs.shape[1]),
                    "width": int(thumbs.shape[2]),
                    "channels": int(thumbs.shape[3]),
                }
            )
            buffers.append(thumbs.tobytes())
        elif kind == "bool":
            out.append({"name": name, "kind": "bool", "buffer": len(buffers), "dtype": "uint8"})
            buffers.append(np.asarray(values)[ids].astype(np.uint8).tobytes())
        else:
            out.append(
                {"name": name, "kind": "numeric", "buffer": len(buffers), "dtype": "float64"}
            )
            buffers.append(np.asarray(values)[ids].astype("<f8").tobytes())
    return {"ids": 0, "columns": out}, buffers


def summary_payload(
    weights: np.ndarray,
    weight_sum: float | None = None,
    *,
    unlabelled: int = 0,
    unlabelled_filter: str = "",
) -> dict[str, Any]:
    """Rows, included rows (weight > 0), weight sum, effective sample size, unlabelled rows.

    ``unlabelled_filter`` is the filter text selecting the unlabelled rows (the
    page offers it as a click).
    """
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum()) if weight_sum is None else float(weight_sum)
    squares = float(np.dot(w, w))
    return {
        "rows": int(w.size),
        "included": int(w.size - np.count_nonzero(w == 0)),
        "weight_sum": total,
        "ess": total * total / squares if squares > 0 else 0.0,
        "unlabelled": int(unlabelled),
        "unlabelled_filter": unlabelled_filter,
    }


def class_counts(table: WeightTable) -> np.ndarray:
    """Rows per class (from :func:`weightwidget.view.class_aggregates`)."""
    return class_aggregates(table)[0]


def classes_payload(table: WeightTable, limit: int = 1000) -> list[dict[str, Any]]:
    """Per class: value, count, weight sum, raw share, effective share, filter text.

    Parameters
    ----------
    table : WeightTable
        The table (aggregates come from :func:`weightwidget.view.class_aggregates`).
    limit : int, default=1000
        Most classes sent (the biggest; the rest are left out of the panel).
    """
    classes = table.classes
    counts, _, sums = class_aggregates(table)
    total = float(sums.sum())
    order = np.arange(len(classes))
    if len(classes) > limit:  # keep the biggest classes, in class order
        order = np.sort(np.argsort(-counts, kind="stable")[:limit])
    n = max(table.n_rows, 1)
    return [
        {
            "value": class_text(classes[i]),
            "count": int(counts[i]),
            "weight_sum": float(sums[i]),
            "share": float(counts[i]) / n,
            "effective_share": float(sums[i]) / total if total > 0 else 0.0,
            "filter": class_filter(table.label, _item(classes[i])),
        }
        for i in order.tolist()
    ]


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def history_payload(history: pd.DataFrame, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` revisions as JSON-ready dicts (times in ISO 8601, UTC)."""
    tail = history.tail(limit)
    parents = tail["parent"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    created = [pd.Timestamp(c).isoformat() for c in tail["created"].tolist()]
    return [
        {
            "revision": int(rev),
            "parent": None if np.isnan(parent) else int(parent),
            "created": when,
            "author": str(author or ""),
            "message": str(message or ""),
            "rows_changed": int(changed),
        }
        for rev, parent, when, author, message, changed in zip(
            tail["revision"].tolist(),
            parents.tolist(),
            created,
            tail["author"].tolist(),
            tail["message"].tolist(),
            tail["rows_changed"].tolist(),
            strict=True,
        )
    ]


#: The aggregates a run shows in the history panel, per kind: (name, unit).
HEADLINES = {
    "metrics": (("accuracy", "share"), ("loss", "number")),
    "label_issues": (("flagged", "count"), ("fraction", "share")),
}


def runs_payload(runs: pd.DataFrame, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` runs (``table.runs()``) as JSON-ready dicts, oldest first.

    Each carries the revision it was computed at, its kind, the columns it wrote
    and a few headline aggregates (:data:`HEADLINES`; for other kinds the first
    two numeric aggregates).
    """
    out = []
    for rec in runs.tail(limit).to_dict("records"):
        aggregates = rec.get("aggregates") or {}
        kind = str(rec.get("kind") or "")
        picks = (
            HEADLINES.get(kind)
            or tuple(
                (k, "number")
                for k, v in aggregates.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            )[:2]
        )
        headline = []
        for name, unit in picks:
            value = aggregates.get(name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            headline.append(
                {
                    "name": name,
                    "value": float(value) if ok and np.isfinite(value) else None,
                    "unit": unit,
                }
            )
        committed = rec.get("committed")
        out.append(
            {
                "run": str(rec["run"]),
                "revision": int(rec["revision"]),
                "committed": None if committed is None or pd.isna(committed) else int(committed),
                "created": pd.Timestamp(rec["created"]).isoformat(),
                "kind": kind,
                "columns": [str(c) for c in rec.get("columns") or []],
                "headline": headline,
            }
        )
    return out
