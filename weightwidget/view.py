"""What a table looks like through a filter, a sort and a selection.

One pure module owns the view state of a :class:`~weightwidget.table.WeightTable`:
filter masks, sort orders, pages of row ids by position, the selection (only
rows the filter shows), per-class aggregates and column summaries (histograms
of numeric columns, top values of the others) over the matched rows, and the
class a label text from the page stands for (:func:`label_value`). The
widget is a thin adapter over :class:`TableView`; ``WeightTable.mask``,
``select``, ``count`` and ``sort_order`` and the CLI call the functions here.

Caches are keyed by the table's version (:func:`table_version`: its revision and
column set), the filter text and the sort, so an edit, a new column or another
process's commit is never answered from a stale cache. Nothing here imports
traitlets or anywidget; everything is vectorised numpy.
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import query
from ._text import as_text, is_text
from .errors import FilterError

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = [
    "RESERVED",
    "SUGGESTION_ACTIONS",
    "SUGGESTION_KINDS",
    "Rows",
    "Suggestion",
    "TableView",
    "class_aggregates",
    "class_filter",
    "class_text",
    "column_summary",
    "columns",
    "filter_mask",
    "label_value",
    "missing_filter",
    "quote_column",
    "range_condition",
    "refine_filter",
    "sort_order",
    "suggested_labels",
    "suggestion",
    "suggestions",
    "table_version",
    "top_order",
    "value_condition",
]

#: Pseudo columns every table has: the current weights and the row ids.
RESERVED = ("weight", "row")
#: Positions answered from a partial (top-k) sort while the full sort runs.
TOP_K = 1000
#: Bars of a numeric column's histogram (at most; integer columns get one per value).
BINS = 24
#: Values listed for a text, bool or label column (the rest is summed as "other").
TOP_VALUES = 8
#: Cache sizes (entries per table).
_MASKS, _ORDERS, _CODES, _VIEWS = 16, 8, 64, 8


# --------------------------------------------------------------------------- versions
def table_version(table: WeightTable) -> Hashable:
    """A value that changes whenever the table's weights, labels or columns change.

    The table's revision, plus its column-set version while adding columns is
    not yet a revision of its own.
    """
    return (table.revision, getattr(table, "_columns_version", 0))


def _data_key(table: WeightTable, reads_weights: bool) -> Hashable:
    """The part of the version a result depends on.

    A result that reads no weights (a mask of ``label == 3``, a sort by ``loss``)
    survives weight edits; anything reading weights is keyed by the revision.
    """
    rev, columns_version = table_version(table)  # type: ignore[misc]
    return (rev if reads_weights else -1, columns_version)


class _LRU(OrderedDict):  # type: ignore[type-arg]
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_(self, key: Hashable) -> Any:
        hit = self.get(key)
        if hit is not None:
            self.move_to_end(key)
        return hit

    def put(self, key: Hashable, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


class _Caches:
    """Results shared by every view of one table (masks, sort orders, bin codes)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.masks = _LRU(_MASKS)
        self.orders = _LRU(_ORDERS)
        self.codes = _LRU(_CODES)
        self.classes = _LRU(4)
        self.suggest_plans = _LRU(16)  # suggestions: weight-independent part, per column set
        self.suggestions = _LRU(4)  # suggestions: counts, per table version
        self.sorting: dict[Hashable, Future[np.ndarray]] = {}


_CACHES: weakref.WeakKeyDictionary[Any, _Caches] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _caches(table: WeightTable) -> _Caches:
    with _CACHES_LOCK:
        c = _CACHES.get(table)
        if c is None:
            c = _CACHES[table] = _Caches()
        return c


_SORTER: ThreadPoolExecutor | None = None


def _sorter() -> ThreadPoolExecutor:
    """The worker that finishes full sorts (made on first use, not at import)."""
    global _SORTER
    with _CACHES_LOCK:
        if _SORTER is None:
            _SORTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weightwidget-sort")
        return _SORTER


# --------------------------------------------------------------------------- columns
class ColumnView(Mapping[str, Any]):
    """A table's columns as the filter evaluator sees them, with ``weight`` and ``row``."""

    def __init__(self, table: WeightTable) -> None:
        self._table = table

    def __getitem__(self, key: str) -> Any:
        if key in RESERVED or key in self._table.columns:
            return self._table.column(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self._table.columns
        yield from RESERVED

    def __len__(self) -> int:
        return len(self._table.columns) + len(RESERVED)

    def __contains__(self, key: object) -> bool:
        return key in RESERVED or key in self._table.columns


def columns(table: WeightTable) -> ColumnView:
    """The table's columns plus ``weight`` and ``row``, for :func:`query.evaluate`."""
    return ColumnView(table)


# --------------------------------------------------------------------------- filter + sort
def filter_mask(table: WeightTable, text: str) -> np.ndarray:
    """The read-only boolean mask of a filter, cached per (filter, table version).

    Raises
    ------
    FilterError
        With the position of the problem (an empty text is an error too; a view
        treats blank text as "no filter").
    """
    node = query.parse(text)
    key = (text, _data_key(table, "weight" in query.columns_used(node)))
    c = _caches(table)
    with c.lock:
        hit = c.masks.get_(key)
    if hit is not None:
        return hit
    mask = query.evaluate(text, columns(table), len(table))  # parse() is cached
    mask.flags.writeable = False
    with c.lock:
        return c.masks.put(key, mask)


def _sortable(table: WeightTable, by: str) -> Any:
    values = table.column(by)
    if query.column_kind(values) == "image":
        raise ValueError(f"column {by!r} holds images and cannot be sorted")
    return values


def sort_order(table: WeightTable, by: str, *, ascending: bool = True) -> np.ndarray:
    """Row ids ordered by a column: stable, ties by row id, missing values last.

    Cached per (column, direction, table version); waits for a sort that a view
    started in the background.
    """
    if by == "row":
        rows = np.arange(len(table), dtype=np.int64)
        return rows if ascending else rows[::-1].copy()
    values = _sortable(table, by)
    key = (by, bool(ascending), _data_key(table, by == "weight"))
    c = _caches(table)
    with c.lock:
        order = c.orders.get_(key)
        running = c.sorting.get(key)
    if order is not None:
        return order
    order = (
        running.result() if running is not None else query.sort_order(values, ascending=ascending)
    )
    order.flags.writeable = False
    with c.lock:
        c.sorting.pop(key, None)
        return c.orders.put(key, order)


def _sort_in_background(table: WeightTable, by: str, ascending: bool) -> None:
    """Start the full sort in the worker unless it is cached or running."""
    if by == "row":
        return
    values = _sortable(table, by)
    key = (by, bool(ascending), _data_key(table, by == "weight"))
    c = _caches(table)
    with c.lock:
        if key in c.orders or key in c.sorting:
            return
        # the worker calls the pure query.sort_order on an immutable array (numpy
        # releases the GIL while sorting); the result is cached by whoever asks first
        c.sorting[key] = _sorter().submit(query.sort_order, values, ascending=ascending)


def top_order(values: Any, rows: np.ndarray | None, ascending: bool, k: int) -> np.ndarray | None:
    """The first ``k`` row ids of the stable sort of a numeric or text column, or None.

    Same order as :func:`sort_order` restricted to ``rows`` (ties by row id, NaN
    and missing text last), found in O(n): numbers with ``argpartition``, text
    with Arrow's ``select_k`` (see :meth:`weightwidget._text.TextColumn.head`).
    None when that is not worth it (images, few rows, or many ties at the cut).
    """
    if is_text(values):
        return as_text(values).head(rows, ascending=ascending, k=k)
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in "iuf":
        return None
    vals = values if rows is None else values[rows]
    if vals.size <= 4 * k:
        return None
    if ascending:
        key = vals
    else:  # -x for floats (NaN stays NaN, so last); ~x for integers (no overflow)
        key = -vals if vals.dtype.kind == "f" else ~vals
    cut = np.partition(key, k - 1)[k - 1]
    if key.dtype.kind == "f" and np.isnan(cut):
        return None
    take = np.flatnonzero(key <= cut)
    if take.size > 2 * k:  # many ties at the cut: the full sort is as quick
        return None
    ids = take if rows is None else rows[take]
    first = np.lexsort((ids, key[take]))[:k]
    return ids[first]


# --------------------------------------------------------------------------- classes
def class_aggregates(
    table: WeightTable, *, weights: np.ndarray | None = None, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: rows, included rows (weight > 0) and weight sums.

    Over every row at the current weights unless ``weights`` (e.g. of a past
    revision) or ``mask`` are given; the default case is cached per revision.
    """
    codes, k = table.label_codes, len(table.classes)
    if weights is None and mask is None:
        key = _data_key(table, True)
        c = _caches(table)
        with c.lock:
            hit = c.classes.get_(key)
        if hit is None:
            hit = query.class_aggregates(codes, k, table.weights)
            for arr in hit:
                arr.flags.writeable = False  # shared by every caller
            with c.lock:
                c.classes.put(key, hit)
        return hit
    w = table.weights if weights is None else np.asarray(weights, dtype=np.float64)
    return query.class_aggregates(codes, k, w, mask)


def class_text(value: Any) -> str:
    """A class as the page spells it (the ``value`` of a class in the widget's list)."""
    return str(_item(value))


_WHOLE = re.compile(r"[+-]?[0-9]+")


def label_value(table: WeightTable, text: str | None, *, new: bool = False) -> tuple[Any, int]:
    """The class a label typed or picked in the page stands for, and its index.

    Parameters
    ----------
    table : WeightTable
        The table whose classes are meant.
    text : str or None
        A class as :func:`class_text` spells it; None for "unlabelled".
    new : bool, default=False
        Accept a text that is not a class yet: it is read as the label column's
        type (a whole number, a number, true/false or text).

    Returns
    -------
    value : object
        The class (a Python scalar) or None; what ``set_labels`` takes.
    index : int
        Its index in ``table.classes``; -1 for None, ``len(table.classes)`` for
        a new class (it is not there yet).

    Raises
    ------
    ValueError
        A text that names no class (without ``new``), or that cannot be read as
        the label column's type.
    """
    if text is None:
        return None, -1
    classes = table.classes
    texts = [class_text(c) for c in classes.tolist()]
    try:
        i = texts.index(text)
    except ValueError:
        i = -1
    if i >= 0:
        return _item(classes[i]), i
    shown = text if len(text) <= 60 else text[:57] + "..."
    if not new:
        known = ", ".join(texts[:10]) + (f", ... ({len(texts)} in all)" if len(texts) > 10 else "")
        raise ValueError(
            f"{shown!r} is not a class of {table.label!r} (classes: {known or 'none yet'}); "
            "pick one of them, or add it as a new class"
        )
    value = _parse_class(text, classes.dtype.kind, table.label)
    # a class spelled differently (" 3", "3.0" for 3): the existing one
    match = np.flatnonzero(classes == value) if classes.size else np.empty(0, np.int64)
    if match.size:
        return _item(classes[int(match[0])]), int(match[0])
    return value, len(classes)


def _parse_class(text: str, kind: str, label: str) -> Any:
    """A new class's text read as the label column's type."""
    t = text.strip()
    if kind in "iu":
        if not _WHOLE.fullmatch(t):
            raise ValueError(
                f"label column {label!r} holds whole numbers; {text[:60]!r} is not one"
            )
        return int(t)
    if kind == "f":
        try:
            num = float(t)
        except ValueError:
            num = math.nan
        if not math.isfinite(num):
            raise ValueError(
                f"label column {label!r} holds numbers; {text[:60]!r} is not a finite number"
            )
        return num
    if kind == "b":
        if t.lower() not in ("true", "false"):
            raise ValueError(f"label column {label!r} holds true/false; got {text[:60]!r}")
        return t.lower() == "true"
    if not t:
        raise ValueError("a new class needs a name; got an empty text")
    return text


def missing_filter(table: WeightTable) -> str:
    """Filter text selecting the unlabelled rows, e.g. ``label is missing``."""
    return f"{quote_column(table.label)} is missing"


# --------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class _Binned:
    """A column cut into bins once per version; counts over a mask are then cheap."""

    kind: str  # "histogram" or "values"
    codes: np.ndarray  # one small int per row; the last code is "missing"
    n_codes: int
    edges: np.ndarray | None  # histogram bin edges (n_bins + 1)
    labels: Any  # values: the value of each code (a list, or pyarrow strings for text)
    total: np.ndarray  # counts over all rows
    integer: bool = False


def _nice_step(span: float, bins: int) -> float:
    raw = span / bins
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10 * mag


def histogram_edges(values: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, bool]:
    """Round bin edges over the finite values, and whether the bins are integers."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN or inf: the slow way
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return np.array([0.0, 1.0]), False
        lo, hi = float(finite.min()), float(finite.max())
    if values.size == 0:
        return np.array([0.0, 1.0]), False
    integer = values.dtype.kind in "iub" or _integer_valued(values)
    if integer and hi - lo + 1 <= bins:  # one bar per value
        return np.arange(lo, hi + 2, dtype=np.float64), True
    if hi == lo:
        return np.array([lo, lo + 1.0]), integer
    if not math.isfinite(hi - lo):  # e.g. -1e308 .. 1e308: interpolate without overflow
        t = np.arange(bins + 1) / bins
        return (1 - t) * lo + t * hi, False
    raw = (hi - lo) / bins
    if not raw > max(1e-11, 1e-9 * max(abs(lo), abs(hi))):
        # too narrow for round edges (rounded to 12 decimals, or at this magnitude,
        # they would collapse): plain interpolation, with any duplicates dropped
        return np.unique(np.linspace(lo, hi, bins + 1)), False
    step = _nice_step(hi - lo, bins)
    start = math.floor(lo / step) * step
    n = max(1, math.ceil((hi - start) / step + 1e-12))
    if start + n * step <= hi:  # the maximum lies in the last (closed) bin
        n += 1
    edges = start + step * np.arange(n + 1)
    edges = np.round(edges, 12)  # repr of an edge stays short in a filter text
    return edges, integer and step >= 1 and float(step).is_integer()


def _integer_valued(values: np.ndarray) -> bool:
    """Whether a float column holds only whole numbers (NaN and inf aside)."""
    sample = values[:: max(1, values.size // 1000)]
    with np.errstate(invalid="ignore"):
        if not np.all((sample == np.rint(sample)) | ~np.isfinite(sample)):
            return False  # the usual float column: decided by a thousand values
        return bool(np.all((values == np.rint(values)) | ~np.isfinite(values)))


_CHUNK = 65536  # rows per step of bin_codes: temporaries stay in the CPU cache


def bin_codes(values: np.ndarray, edges: np.ndarray, *, integer: bool = False) -> np.ndarray:
    """Bin index of each value: ``edges[i] <= x < edges[i+1]``, the last bin closed.

    Values below the first edge go to bin 0, above the last to the last bin, NaN
    to ``len(edges) - 1`` (one past the bins). Exactly what ``searchsorted``
    gives, at a fraction of its cost: evenly spaced edges are found by
    arithmetic in cache-sized chunks, and only values within rounding of an edge
    are looked up. ``integer`` says the values and the edges are whole numbers:
    bins are then found by exact floor division.
    """
    nb = len(edges) - 1
    dtype = np.uint8 if nb < 255 else np.uint16
    out = np.empty(values.shape, dtype=dtype)
    steps = np.diff(edges)
    step = float(edges[1] - edges[0])
    even = bool(np.allclose(steps, step, rtol=1e-9, atol=0)) and step > 0
    start, inv = float(edges[0]), 1.0 / step if step > 0 else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(0, values.size, _CHUNK):
            x = values[i : i + _CHUNK]
            if even and integer:
                code = x - start if step == 1 else np.floor_divide(x - start, step)
                np.clip(code, 0, nb - 1, out=code)
                code = code.astype(np.int32)
            elif even:
                t = (x - start) * inv
                f = np.floor(t)
                np.clip(f, 0, nb - 1, out=f)  # NaN stays NaN; fixed below
                code = f.astype(np.int32)
                # within rounding of an edge: decide exactly, as searchsorted would
                near = np.flatnonzero(~(np.abs(t - np.floor(t) - 0.5) < 0.5 - 1e-7))
                if near.size:
                    code[near] = np.searchsorted(edges, x[near], side="right") - 1
            else:
                code = np.searchsorted(edges, x, side="right") - 1
            np.clip(code, 0, nb - 1, out=code)
            if x.dtype.kind == "f":
                code[np.isnan(x)] = nb
            out[i : i + x.size] = code
    return out


def _bin(table: WeightTable, name: str) -> _Binned | None:
    """Cut a column into bins (histogram) or value codes, cached per column version."""
    reads_weights = name in ("weight", table.label)
    key = (name, _data_key(table, reads_weights))
    c = _caches(table)
    with c.lock:
        hit = c.codes.get_(key)
    if hit is not None:
        return hit
    values = table.column(name)
    kind = query.column_kind(values)
    if kind == "image":
        return None
    if name == table.label:
        labels = [_item(v) for v in table.classes.tolist()]
        codes = np.asarray(table.label_codes)
        # unlabelled rows (code -1) are the label's missing values
        binned = _values(codes, labels, missing=True)
    elif kind == "string":
        # codes and values stay Arrow: only the values a summary lists become Python
        codes, distinct = as_text(values).groups()
        binned = _values(codes, distinct, missing=True)
    elif kind == "bool":
        arr = np.asarray(values, dtype=bool)
        binned = _values(arr.astype(np.int8), [False, True], missing=False)
    else:
        arr = np.asarray(values)
        edges, integer = histogram_edges(arr)
        nb = len(edges) - 1
        # bin i holds edges[i] <= x < edges[i+1] (the last bin is closed), so a brush
        # over whole bins selects exactly the rows its bars count
        codes = bin_codes(arr, edges, integer=integer)
        total = np.bincount(codes, minlength=nb + 1)
        binned = _Binned("histogram", codes, nb + 1, edges, None, total, integer)
    with c.lock:
        return c.codes.put(key, binned)


def _values(codes: np.ndarray, labels: Any, *, missing: bool) -> _Binned:
    n = len(labels)
    if missing:  # pandas codes missing text as -1: move it to the last code
        codes = np.where(codes < 0, n, codes)
    dtype = np.uint8 if n < 255 else np.uint16 if n < 65535 else np.int32
    codes = codes.astype(dtype, copy=False)
    total = np.bincount(codes, minlength=n + 1)
    return _Binned("values", codes, n + 1, None, labels, total)


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Rows:
    """The matched rows of a filter, as the cheaper of two ways to count over them.

    ``ids`` are the matched row ids, or (``complement``) the unmatched ones when
    those are fewer: counts over the matched rows are then the totals minus the
    counts over ``ids``. Either way a count touches at most half the rows.
    """

    ids: np.ndarray
    complement: bool

    @classmethod
    def of(cls, mask: np.ndarray, matched: np.ndarray | None = None) -> Rows:
        """From a mask (and the matched ids, when already at hand)."""
        n_match = int(matched.size) if matched is not None else int(np.count_nonzero(mask))
        if n_match <= mask.size // 2:
            return cls(matched if matched is not None else np.flatnonzero(mask), False)
        return cls(np.flatnonzero(~mask), True)


def _counts(binned: _Binned, rows: np.ndarray | Rows | None) -> np.ndarray:
    if rows is None:
        return binned.total
    if isinstance(rows, np.ndarray):  # a mask
        rows = Rows.of(rows)
    counts = np.bincount(binned.codes[rows.ids], minlength=binned.n_codes)
    return binned.total - counts if rows.complement else counts


def column_summary(
    table: WeightTable,
    name: str,
    mask: np.ndarray | Rows | None = None,
    *,
    top: int = TOP_VALUES,
) -> dict[str, Any] | None:
    """A small summary of one column over the rows ``mask`` selects (None: all rows).

    ``mask`` may also be a :class:`Rows` (the matched ids, or the unmatched ones
    when fewer), which a view computes once for all its columns.

    Numeric columns (and ``weight``) get a histogram: round bin ``edges``, the
    ``counts`` of matched rows and ``totals`` of all rows per bin, and
    ``missing`` (NaN). Text, bool and label columns get their ``top`` values by
    matched count, each with its count, total and the filter condition selecting
    it; the rest is summed as ``other``. Image columns (and ``row``) get None.

    Bins and value codes are computed once per column version; a summary over a
    new filter is then one ``bincount`` of the matched rows.
    """
    if name == "row":
        return None
    binned = _bin(table, name)
    if binned is None:
        return None
    counts = _counts(binned, mask)
    matched = int(counts.sum())
    if binned.kind == "histogram":
        assert binned.edges is not None
        return {
            "name": name,
            "kind": "histogram",
            "edges": binned.edges.tolist(),
            "integer": binned.integer,
            "counts": counts[:-1].tolist(),
            "totals": binned.total[:-1].tolist(),
            "missing": int(counts[-1]),
            "matched": matched,
        }
    assert binned.labels is not None
    real = counts[:-1]
    n = real.size
    k = min(top, n)
    if k < n:  # the k largest matched counts; ties at the cut by code (value order)
        cut = -np.partition(-real, k - 1)[k - 1]
        above = np.flatnonzero(real > cut)
        pick = np.concatenate([above, np.flatnonzero(real == cut)[: k - len(above)]])
    else:
        pick = np.arange(n)
    pick = pick[np.lexsort((pick, -binned.total[pick], -real[pick]))]
    pick = pick[real[pick] > 0] if mask is not None else pick
    label_col = name == table.label
    values = [
        {
            "value": _text(value),
            "count": int(real[i]),
            "total": int(binned.total[i]),
            "filter": value_condition(name, value, label=label_col),
        }
        for i, value in zip(pick.tolist(), _labels_at(binned.labels, pick), strict=True)
    ]
    shown = sum(v["count"] for v in values)
    return {
        "name": name,
        "kind": "values",
        "values": values,
        "other": int(real.sum()) - shown,
        "distinct": int(np.count_nonzero(real)),
        "missing": int(counts[-1]),
        "matched": matched,
    }


def _labels_at(labels: Any, ids: np.ndarray) -> list[Any]:
    """The values of codes ``ids`` as Python objects (only these become Python)."""
    if isinstance(labels, list):
        return [labels[i] for i in ids.tolist()]
    import pyarrow as pa

    return labels.take(pa.array(np.asarray(ids, dtype=np.int64))).to_pylist()


def _text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- conditions
def quote_column(name: str) -> str:
    """Spell a column name for the filter language (back-quoted when needed)."""
    if name.isidentifier() and name.isascii() and name.lower() not in query.KEYWORDS:
        return name
    return "`" + name.replace("`", "``") + "`"  # a doubled back-quote stands for one


def _literal(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def class_filter(label: str, value: Any) -> str:
    """Filter text selecting one class, e.g. ``label == 3`` or ``label == "cat"``."""
    return f"{quote_column(label)} == {_literal(value)}"


def range_condition(name: str, lo: float | None, hi: float | None, *, closed: bool = False) -> str:
    """Filter text for ``lo <= name < hi`` (``<= hi`` when ``closed``); a side may be open."""
    col = quote_column(name)
    if lo is not None and hi is not None and not lo <= hi:
        raise ValueError(f"a range needs lo <= hi; got lo={lo!r}, hi={hi!r}")
    for v in (lo, hi):
        if v is not None and not math.isfinite(v):
            raise ValueError(f"range bounds must be finite numbers; got {v!r}")
    op = "<=" if closed else "<"
    if lo is not None and hi is not None:
        return f"{_num(lo)} <= {col} {op} {_num(hi)}"
    if lo is not None:
        return f"{col} >= {_num(lo)}"
    if hi is not None:
        return f"{col} {op} {_num(hi)}"
    raise ValueError("a range needs lo, hi or both")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def value_condition(name: str, value: Any, *, label: bool = False) -> str:
    """Filter text selecting rows whose column equals ``value`` (quoted safely)."""
    return class_filter(name, value)


def refine_filter(text: str, old: str | None, new: str | None) -> str:
    """The filter ``text`` with the condition ``old`` replaced by ``new``.

    ``old`` is the condition a previous brush or click added (if it is still one
    of the top-level ``and`` terms of ``text``, it is replaced or, when ``new``
    is None, removed); otherwise ``new`` is added with ``and``. A filter whose
    top level is an ``or`` is parenthesised first, so the condition narrows all
    of it.
    """
    base = text.strip()
    if old:
        terms = _and_terms(base)
        if terms is not None and old in terms:
            i = terms.index(old)
            if new is None:
                del terms[i]
            else:
                terms[i] = new
            return " and ".join(terms)
    if new is None:
        return base
    if not base:
        return new
    if _top_level_or(base):
        base = f"({base})"
    return f"{base} and {new}"


def _and_terms(text: str) -> list[str] | None:
    """``text`` split at its top-level `` and ``s (outside quotes and brackets)."""
    terms: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    low = text.lower()
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and low.startswith(" and ", i):
            terms.append(text[start:i].strip())
            start = i + 5
            i += 5
            continue
        i += 1
    if quote or depth:
        return None
    terms.append(text[start:].strip())
    return terms


def _top_level_or(text: str) -> bool:
    try:
        node = query.parse(text)
    except FilterError:
        return False
    return isinstance(node, query.BoolOp) and node.op == "or"


# --------------------------------------------------------------------------- suggestions
#: Share of a run's measured rows that "hardest by loss" and "least confident" list.
SUGGEST_FRACTION = 0.01
#: Label-issue runs the suggestions list (the newest).
SUGGEST_RUNS = 4
#: The kinds of suggestion, in the order they are listed.
SUGGESTION_KINDS = (
    "label_issues",
    "relabels",
    "hardest",
    "least_confident",
    "label_next",
    "excluded",
)
#: Bulk actions a suggestion may offer.
SUGGESTION_ACTIONS = ("exclude", "scale", "relabel", "include")
#: A run's rank column for "label next" (1 = label first, missing = not ranked).
LABEL_NEXT_SUFFIX = "_label_next"


@dataclass(frozen=True)
class Suggestion:
    """One line of the suggestions panel: rows that may deserve a change.

    Attributes
    ----------
    key : str
        Names the line across versions: ``kind`` or ``kind:run``
        (``"label_issues:r3"``).
    kind : str
        One of :data:`SUGGESTION_KINDS`.
    run : str or None
        The run the line comes from.
    title : str
        A few words for the panel (``"label issues"``).
    count : int
        How many rows ``filter`` matches at the version the line was computed at.
    filter : str
        Filter text that shows exactly those rows (columns quoted by
        :func:`quote_column`), so a click shows what the count counts.
    sort_by : str or None
        The sort that puts the most pressing rows first (None: dataset order).
    ascending : bool
        Its direction.
    actions : tuple of str
        The bulk actions offered (of :data:`SUGGESTION_ACTIONS`).
    detail : str
        What the line counts, in a sentence.
    noun : tuple of str
        Singular and plural noun of the rows, for revision messages.
    """

    key: str
    kind: str
    run: str | None
    title: str
    count: int
    filter: str
    sort_by: str | None
    ascending: bool
    actions: tuple[str, ...]
    detail: str
    noun: tuple[str, str]

    def rows_text(self, n: int, *, selected: bool = False) -> str:
        """``"412 label issues of run r3"``; ``selected`` gives ``"12 selected label ..."``."""
        return f"{n:,} {'selected ' if selected else ''}{self.noun[n != 1]}"

    def payload(self) -> dict[str, Any]:
        """The line as the page gets it (``_protocol.SUGGESTION``)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "run": self.run,
            "title": self.title,
            "count": self.count,
            "filter": self.filter,
            "sort_by": self.sort_by,
            "ascending": self.ascending,
            "actions": list(self.actions),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class _Line:
    """A suggestion before counting: the part that reads no weights, per column set."""

    template: Suggestion
    base: np.ndarray | None  # mask of the weight-free filter (None: "weight == 0")
    included: bool  # the filter adds "and weight > 0": counted against the weights


@dataclass(frozen=True)
class _Run:
    run: str
    kind: str
    columns: frozenset[str]


def suggestions(table: WeightTable) -> list[Suggestion]:
    """What may deserve a change at the table's current version, one line per kind.

    The lines, in order (a line per run for label issues; the newest run for
    the others; every count is of rows the line's ``filter`` matches):

    ``label_issues`` (per run of :func:`~weightwidget.find_label_issues`, newest first)
        ``{run}_label_issue and weight > 0``: flagged rows still included; worst
        ``{run}_label_quality`` first. Excluding them takes them off the line.
    ``relabels`` (per such run)
        ``... and label != {run}_suggested_label``: of those, the rows whose
        suggested label differs from the current label; relabelling them to it
        takes them off the line.
    ``hardest`` (the newest :func:`~weightwidget.collect_metrics` run)
        ``{run}_loss >= q and weight > 0``, ``q`` the loss of the top
        :data:`SUGGEST_FRACTION` (1%, at least one row) of the rows the run
        measured (finite loss); highest loss first. ``q`` is fixed per run and
        column set, so excluded rows leave the line and no others join it.
    ``least_confident`` (the same run)
        ``{run}_confidence <= q and weight > 0`` (``and label is not missing``
        when rows are unlabelled), ``q`` the confidence of the lowest 1% of the
        labelled rows the run measured; least confident first.
    ``label_next`` (when rows are unlabelled)
        ``label is missing``, in the order to label them: by the newest run's
        ``{run}_label_next`` rank column (1 first; written by the user from
        :func:`~weightwidget.suggest_to_label`, any strategy), else by the
        newest metrics run's ``{run}_confidence``, least confident first (the
        order of ``suggest_to_label(strategy="least_confident")``, ties by row
        id instead of at random).
    ``excluded``
        ``weight == 0``.

    Parts that read no weights (thresholds, the masks of the weight-free
    terms) are computed once per column set (:func:`table_version`'s second
    part: new columns, label edits); after a weight edit each count is one
    ``count_nonzero``. The result is cached per table version.

    Returns
    -------
    list of Suggestion
    """
    key = table_version(table)
    c = _caches(table)
    with c.lock:
        hit = c.suggestions.get_(key)
    if hit is not None:
        return hit
    plan = _suggestion_plan(table)
    weights = np.asarray(table.weights)
    included = weights > 0
    n_included = int(np.count_nonzero(included))
    out = []
    for line in plan:
        base = line.base
        if base is None:  # weight == 0
            count = len(weights) - n_included
        elif line.included:
            count = int(np.count_nonzero(base & included))
        else:
            count = int(np.count_nonzero(base))
        out.append(replace(line.template, count=count))
    with c.lock:
        return c.suggestions.put(key, out)


def suggestion(table: WeightTable, key: str) -> Suggestion:
    """The current line named ``key``, or ValueError naming the lines there are."""
    items = suggestions(table)
    for item in items:
        if item.key == key:
            return item
    known = ", ".join(repr(i.key) for i in items)
    raise ValueError(f"no suggestion {key[:100]!r} at revision {table.revision}; there are {known}")


def suggested_labels(table: WeightTable, run: str, rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows among ``rows`` whose run suggests another label, and those labels.

    Rows whose ``{run}_suggested_label`` is missing, or equals the current
    label, are left out.

    Returns
    -------
    ids : ndarray of int64
        The rows to relabel (in the order of ``rows``).
    labels : ndarray
        Their suggested labels, values of ``table.classes``.
    """
    name = f"{run}_suggested_label"
    if name not in table.columns:
        raise ValueError(f"run {run!r} wrote no {name!r} column; relabel needs find_label_issues")
    codes = _class_codes(table, name)
    ids = np.asarray(rows, dtype=np.int64)
    sub = codes[ids]
    keep = (sub >= 0) & (sub != np.asarray(table.label_codes)[ids])
    return ids[keep], np.asarray(table.classes)[sub[keep]]


def _class_codes(table: WeightTable, name: str) -> np.ndarray:
    """Index into ``table.classes`` of each value of column ``name`` (-1: missing, unknown)."""
    key = ("codes", name, _data_key(table, False))
    c = _caches(table)
    with c.lock:
        hit = c.suggest_plans.get_(key)
    if hit is not None:
        return hit
    classes = pd.Index(np.asarray(table.classes))
    text = pd.Index([_text(v) for v in np.asarray(table.classes)])
    values = table.column(name)
    if isinstance(values, pd.Categorical):
        cats = values.categories
        per_cat = classes.get_indexer(cats)
        if (per_cat < 0).any():  # class 3 written as the text "3"
            per_cat = np.where(per_cat < 0, text.get_indexer([_text(v) for v in cats]), per_cat)
        codes = np.append(per_cat, -1)[np.asarray(values.codes)]  # code -1 (missing) -> -1
    else:
        arr = np.asarray(values)
        try:
            codes = classes.get_indexer(arr)
        except (TypeError, ValueError):
            codes = text.get_indexer([_text(v) for v in arr])
    codes = np.asarray(codes, dtype=np.int64)
    codes.flags.writeable = False
    with c.lock:
        return c.suggest_plans.put(key, codes)


def _runs(table: WeightTable) -> list[_Run]:
    """Runs whose columns the table has, newest first, one per name.

    Cached per set of loaded column revisions (runs change only when columns land;
    a label edit, which changes the column-set version, does not read them again).
    """
    runs = getattr(table, "runs", None)
    if runs is None:
        return []
    loaded = getattr(table, "_loaded_columns", None)
    key = ("runs", table_version(table) if loaded is None else tuple(sorted(loaded)))
    c = _caches(table)
    with c.lock:
        hit = c.suggest_plans.get_(key)
    if hit is not None:
        return hit
    frame = runs()
    have = set(table.columns)
    order = np.argsort(frame["committed"].fillna(-1).to_numpy(dtype=np.int64), kind="stable")
    out: list[_Run] = []
    seen: set[str] = set()
    for i in order[::-1]:
        rec = frame.iloc[int(i)]
        name = str(rec["run"])
        if name in seen:
            continue
        seen.add(name)
        cols = frozenset(c for c in rec["columns"] if c in have)
        out.append(_Run(name, str(rec["kind"]), cols))
    with c.lock:
        return c.suggest_plans.put(key, out)


def _cut_of(
    table: WeightTable, name: str, *, high: bool, labelled: np.ndarray | None = None
) -> tuple[str, str] | None:
    """:func:`_cut` of a numeric column (over the ``labelled`` rows), or None.

    Cached while the column is the same array and the same rows are labelled, so
    a label edit that leaves every row labelled does not cut again.
    """
    column = table.column(name)
    values = _numbers(table, name)
    if values is None:
        return None
    rows = None if labelled is None else np.flatnonzero(~labelled)
    key = ("cut", name, high, id(column), None if rows is None else hash(rows.tobytes()))
    c = _caches(table)
    with c.lock:
        hit = c.suggest_plans.get_(key)
    if hit is not None and hit[0]() is column:
        return hit[1]
    cut = _cut(name, values if labelled is None else values[labelled], high=high)
    with c.lock:
        c.suggest_plans.put(key, (weakref.ref(column), cut))
    return cut


def _cut(name: str, values: np.ndarray, *, high: bool) -> tuple[str, str] | None:
    """The condition keeping the top (``high``) or bottom :data:`SUGGEST_FRACTION`.

    ``name >= q`` (``<= q``), ``q`` the value at the cut; strictly beyond ``q``
    when the rows tied at ``q`` would more than double the line and some rows
    lie beyond it (a column of few distinct values, e.g. clipped losses). The
    bound is written with the fewest digits that select the same rows
    (``loss >= 2.31``, not ``loss >= 2.3098734520``). Returns the filter term
    and its words (``"loss >= 2.31"``); None when no value is finite.
    """
    finite = np.isfinite(values)
    vals = values if finite.all() else values[finite]
    if vals.size == 0:
        return None
    k = max(1, math.ceil(SUGGEST_FRACTION * vals.size))
    i = vals.size - k if high else k - 1
    q = float(np.partition(vals, i)[i])
    above, below = vals > q, vals < q  # masks: no copies of a million values
    n_above, n_below = int(np.count_nonzero(above)), int(np.count_nonzero(below))
    within = vals.size - (n_below if high else n_above)
    strict = within > 2 * k and (n_above if high else n_below) > 0
    op = (">" if strict else ">=") if high else ("<" if strict else "<=")
    # any bound between q and the next value on the open side selects the same rows
    if op in (">=", "<"):  # down to just above the next smaller value
        limit = float(np.max(vals, where=below, initial=-math.inf))
        bound = _shortest(q, limit, up=False)
    else:  # up to just below the next larger value
        bound = _shortest(q, float(np.min(vals, where=above, initial=math.inf)), up=True)
    return f"{quote_column(name)} {op} {_num(bound)}", f"{op} {_num(bound)}"


def _shortest(q: float, limit: float, *, up: bool) -> float:
    """The number with the fewest significant digits from ``q`` towards ``limit``.

    Rounded up (``up``) it stays below ``limit``, rounded down above it: in
    ``[q, limit)`` or ``(limit, q]``.
    """
    from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

    if q == 0:
        return 0.0
    exact = Decimal(repr(q))
    for digits in range(1, 18):
        step = Decimal(1).scaleb(exact.adjusted() - digits + 1)
        x = float(exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))
        if (q <= x < limit) if up else (limit < x <= q):
            return x
    return q


def _numbers(table: WeightTable, name: str) -> np.ndarray | None:
    values = table.column(name)
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind not in "iuf":
        return None
    return values.astype(np.float64, copy=False)


def _suggestion_plan(table: WeightTable) -> list[_Line]:
    """The lines with their weight-free masks, cached per column set (weights aside)."""
    key = ("plan", _data_key(table, False))
    c = _caches(table)
    with c.lock:
        hit = c.suggest_plans.get_(key)
    if hit is not None:
        return hit
    n = len(table)
    label = quote_column(table.label)
    runs = _runs(table)
    lines: list[_Line] = []

    def add(base_text: str | None, included: bool, **fields: Any) -> None:
        if base_text is None:
            base, text = None, "weight == 0"
        else:
            base = query.evaluate(base_text, columns(table), n)
            text = f"{base_text} and weight > 0" if included else base_text
        lines.append(_Line(Suggestion(count=0, filter=text, **fields), base, included))

    issue_runs = [
        r
        for r in runs
        if all(f"{r.run}_{s}" in r.columns for s in ("label_issue", "suggested_label"))
    ][:SUGGEST_RUNS]
    for r in issue_runs:
        issue = quote_column(f"{r.run}_label_issue")
        suggested = quote_column(f"{r.run}_suggested_label")
        quality = f"{r.run}_label_quality"
        sort = quality if quality in r.columns else None
        worst = "; worst label quality first" if sort else ""
        add(
            issue,
            True,
            key=f"label_issues:{r.run}",
            kind="label_issues",
            run=r.run,
            title="label issues",
            sort_by=sort,
            ascending=True,
            actions=("exclude", "scale", "relabel"),
            detail=f"Rows run {r.run} flagged as likely mislabelled, still included "
            f"(weight > 0){worst}. Excluding them takes them off this line.",
            noun=(f"label issue of run {r.run}", f"label issues of run {r.run}"),
        )
        add(
            f"{issue} and {label} != {suggested}",
            True,
            key=f"relabels:{r.run}",
            kind="relabels",
            run=r.run,
            title="suggested relabels",
            sort_by=sort,
            ascending=True,
            actions=("relabel", "exclude", "scale"),
            detail=f"Label issues of run {r.run} whose suggested label differs from the "
            f"current label, still included{worst}. Relabel sets {r.run}_suggested_label.",
            noun=(f"suggested relabel of run {r.run}", f"suggested relabels of run {r.run}"),
        )

    pct = f"{SUGGEST_FRACTION:.0%}"
    metrics = next(
        (r for r in runs if r.kind == "metrics" and f"{r.run}_loss" in r.columns),
        None,
    )
    if metrics is not None:
        loss_name = f"{metrics.run}_loss"
        cut = _cut_of(table, loss_name, high=True)
        if cut is not None:
            add(
                cut[0],
                True,
                key=f"hardest:{metrics.run}",
                kind="hardest",
                run=metrics.run,
                title="hardest by loss",
                sort_by=loss_name,
                ascending=False,
                actions=("exclude", "scale"),
                detail=f"The top {pct} of run {metrics.run}'s losses (loss {cut[1]}), "
                "still included; highest loss first.",
                noun=(
                    f"hardest row by loss of run {metrics.run}",
                    f"hardest rows by loss of run {metrics.run}",
                ),
            )
        conf_name = f"{metrics.run}_confidence"
        unlabelled = table.n_unlabelled > 0
        if conf_name in metrics.columns:
            labelled = np.asarray(table.label_codes) >= 0 if unlabelled else None
            cut = _cut_of(table, conf_name, high=False, labelled=labelled)
            if cut is not None:
                term = f" and {label} is not missing" if unlabelled else ""
                add(
                    f"{cut[0]}{term}",
                    True,
                    key=f"least_confident:{metrics.run}",
                    kind="least_confident",
                    run=metrics.run,
                    title="least confident",
                    sort_by=conf_name,
                    ascending=True,
                    actions=("exclude", "scale"),
                    detail=f"The lowest {pct} of run {metrics.run}'s confidences over "
                    f"labelled rows (confidence {cut[1]}), still included; least "
                    "confident first.",
                    noun=(
                        f"least confident row of run {metrics.run}",
                        f"least confident rows of run {metrics.run}",
                    ),
                )

    if table.n_unlabelled > 0:
        sort, source, order = None, None, "in dataset order (no run ranks them yet)"
        for r in runs:
            rank = f"{r.run}{LABEL_NEXT_SUFFIX}"
            conf_name = f"{r.run}_confidence"
            if rank in r.columns and _numbers(table, rank) is not None:
                sort, source = rank, r.run
                order = f"in run {r.run}'s suggested order ({rank}, 1 first)"
                break
            if r.kind == "metrics" and conf_name in r.columns:
                sort, source = conf_name, r.run
                order = f"least confident first, by run {r.run}'s confidence"
                break
        add(
            f"{label} is missing",
            False,
            key="label_next",
            kind="label_next",
            run=source,
            title="unlabelled: label next",
            sort_by=sort,
            ascending=True,
            actions=(),
            detail=f"Unlabelled rows (never trained on), {order}. Label them in the table; "
            "labelled rows leave this line.",
            noun=("unlabelled row", "unlabelled rows"),
        )

    add(
        None,
        False,
        key="excluded",
        kind="excluded",
        run=None,
        title="excluded rows",
        sort_by=None,
        ascending=True,
        actions=("include",),
        detail="Rows with weight 0: never sampled, left out of training.",
        noun=("excluded row", "excluded rows"),
    )
    for line in lines:  # shared by every caller
        if line.base is not None:
            line.base.flags.writeable = False
    with c.lock:
        return c.suggest_plans.put(key, lines)


# --------------------------------------------------------------------------- the view
@dataclass(frozen=True)
class _Condition:
    """A filter term a brush (``lo``..``hi``) or a click on a value added."""

    text: str
    lo: float | None = None
    hi: float | None = None
    value: str | None = None


class TableView:
    """A table seen through a filter and a sort, with a selection of visible rows.

    Parameters
    ----------
    table : WeightTable
        The table; its edits (from anywhere) show up at the next call.
    filter : str, default=""
        Filter text; blank shows every row.
    sort_by : str or None, default=None
        Sort column (also ``"weight"`` or ``"row"``); None keeps dataset order.
    ascending : bool, default=True
        Sort direction.

    Notes
    -----
    The selection only ever holds rows the filter shows: :meth:`select` refuses
    hidden rows, and :meth:`set_filter` and :meth:`refresh` (after an edit that
    changes what a filter on ``weight`` shows) drop the rows that became hidden.
    """

    def __init__(
        self,
        table: WeightTable,
        *,
        filter: str = "",
        sort_by: str | None = None,
        ascending: bool = True,
    ) -> None:
        self.table = table
        self._filter = ""
        self._sort_by: str | None = None
        self._ascending = True
        self._selected = np.empty(0, dtype=np.int64)
        self._select_all = False
        # column -> the condition a brush or a click added (while it is in the filter)
        self._conditions: dict[str, _Condition] = {}
        self._proposed: tuple[str, str, _Condition | None] | None = None
        self._views = _LRU(_VIEWS)  # (version, filter, sort) -> row ids or a top-k head
        self._summaries = _LRU(64)
        self.set_filter(filter)
        self.set_sort(sort_by, ascending)

    # ---------------------------------------------------------------- state
    @property
    def filter(self) -> str:
        """The filter text ('' for every row)."""
        return self._filter

    @property
    def sort_by(self) -> str | None:
        """The sort column, or None for dataset order."""
        return self._sort_by

    @property
    def ascending(self) -> bool:
        """The sort direction."""
        return self._ascending

    @property
    def select_all(self) -> bool:
        """Whether every matched row is selected."""
        return self._select_all

    def mask(self, text: str | None = None) -> np.ndarray | None:
        """The mask of ``text`` (default: the view's filter); None when it is blank."""
        text = self._filter if text is None else text
        return None if not text.strip() else filter_mask(self.table, text)

    @property
    def matched(self) -> int:
        """How many rows the filter shows."""
        mask = self.mask()
        return len(self.table) if mask is None else int(self._matched_ids().size)

    def check_filter(self, text: str) -> np.ndarray | None:
        """Raise :class:`FilterError` (with the position) unless ``text`` is a valid filter."""
        if not isinstance(text, str):
            raise FilterError("the filter must be text", text=str(text)[:200], position=0)
        return self.mask(text)

    def set_filter(self, text: str) -> None:
        """Show the rows ``text`` matches; selected rows it hides leave the selection.

        "Select all matching" ends: the new filter's rows were never chosen.
        """
        self.check_filter(text)
        proposed, self._proposed = self._proposed, None
        if text == self._filter:
            return
        self._filter = text
        self._select_all = False
        self._prune()
        if proposed is not None and proposed[0] == text:
            _, column, cond = proposed
            if cond is None:
                self._conditions.pop(column, None)
            else:
                self._conditions[column] = cond
        terms = _and_terms(text) or []
        self._conditions = {c: v for c, v in self._conditions.items() if v.text in terms}

    def check_sort(self, by: str | None, names: Sequence[str] | None = None) -> str | None:
        """The sort column (None for '' or None), or ValueError naming the sortable ones."""
        if by is None or by == "":
            return None
        if names is None:
            names = self.sortable()
        if by not in names:
            raise ValueError(
                f"sort_by must be one of the sortable columns {list(names)} or None; got {by!r}"
            )
        return by

    def sortable(self) -> list[str]:
        """Columns a view can be sorted by (all but images)."""
        t = self.table
        names = [n for n in t.columns if query.column_kind(t.column(n)) != "image"]
        return ["row", *names, "weight"]

    def set_sort(self, by: str | None, ascending: bool = True) -> None:
        """Sort by a column (None: dataset order); a full sort starts in the background."""
        self._sort_by = self.check_sort(by)
        self._ascending = bool(ascending)
        if self._sort_by is not None:
            _sort_in_background(self.table, self._sort_by, self._ascending)

    # ---------------------------------------------------------------- selection
    @property
    def selected(self) -> np.ndarray:
        """Explicitly selected row ids (sorted, unique, all shown by the filter)."""
        return self._selected

    def check_selection(self, ids: Any, *, filter: str | None = None) -> np.ndarray:
        """Sorted unique row ids, or ValueError if any is out of range or hidden.

        Parameters
        ----------
        ids : sequence of int
            Row ids.
        filter : str, optional
            Check against this filter instead of the view's (a change that sets
            both).
        """
        arr = np.asarray(ids)
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise ValueError(f"selected must be a list of row ids; got dtype {arr.dtype}")
        arr = np.unique(arr.astype(np.int64))
        n = len(self.table)
        if arr[0] < 0 or arr[-1] >= n:
            bad = int(arr[0] if arr[0] < 0 else arr[-1])
            raise ValueError(f"selected holds row {bad}, but row ids run from 0 to {n - 1}")
        text = self._filter if filter is None else filter
        mask = self.mask(text)
        if mask is not None:
            hidden = arr[~mask[arr]]
            if hidden.size:
                more = f" (and {hidden.size - 1} more)" if hidden.size > 1 else ""
                shown = text if len(text) <= 80 else text[:77] + "..."
                raise ValueError(
                    f"selected holds row {int(hidden[0])}{more}, which the filter {shown!r} "
                    "hides; select only rows the filter shows"
                )
        return arr

    def select(self, ids: Any) -> None:
        """Select these rows (replacing the selection); hidden rows are refused."""
        self._selected = self.check_selection(ids)
        self._select_all = False

    def set_select_all(self, on: bool) -> None:
        """Select every matched row (``selected`` is then empty), or stop doing so."""
        self._select_all = bool(on)
        if on:
            self._selected = np.empty(0, dtype=np.int64)

    def selection(self) -> np.ndarray:
        """The rows a "selection" action changes: visible selected rows, or all matched."""
        if self._select_all:
            return self._matched_ids()
        mask = self.mask()
        rows = self._selected
        # a filter reading weights may hide rows since the last refresh(): never act on them
        return rows if mask is None or rows.size == 0 else rows[mask[rows]]

    def _prune(self) -> None:
        if self._selected.size:
            mask = self.mask()
            if mask is not None:
                self._selected = self._selected[mask[self._selected]]

    def refresh(self) -> None:
        """Follow a change of the table: selected rows a filter on weight now hides leave."""
        self._prune()

    # ---------------------------------------------------------------- rows
    def matched_ids(self) -> np.ndarray:
        """Ids of the rows the filter shows, in dataset order (read-only when cached)."""
        return self._matched_ids()

    def _matched_ids(self) -> np.ndarray:
        mask = self.mask()
        if mask is None:
            return np.arange(len(self.table), dtype=np.int64)
        key = ("matched", self._filter, _data_key(self.table, True))
        hit = self._views.get_(key)
        if hit is None:
            hit = self._views.put(key, np.flatnonzero(mask))
        return hit

    def _view_key(self) -> Hashable:
        return (self._filter, self._sort_by, self._ascending, table_version(self.table))

    def ids(self, start: int, stop: int) -> np.ndarray:
        """Row ids at view positions ``start:stop`` (filtered, then sorted)."""
        start, stop = max(0, start), min(stop, self.matched)
        if stop <= start:
            return np.empty(0, dtype=np.int64)
        by = self._sort_by
        mask = self.mask()
        if by is None:
            if mask is None:
                return np.arange(start, stop, dtype=np.int64)
            return self._matched_ids()[start:stop]
        key = self._view_key()
        full = self._views.get_(("full", key))
        if full is not None:
            return full[start:stop]
        if stop <= TOP_K:
            head = self._views.get_(("head", key))
            if head is None and by != "row":
                # the first pages of a fresh sort come from an O(n) partial sort while
                # the full sort (~100 ms per million rows) runs in the background
                rows = None if mask is None else self._matched_ids()
                head = top_order(self.table.column(by), rows, self._ascending, TOP_K)
                if head is not None:
                    self._views.put(("head", key), head)
            if head is not None and stop <= head.size:
                return head[start:stop]
        order = sort_order(self.table, by, ascending=self._ascending)
        full = order if mask is None else order[mask[order]]
        self._views.put(("full", key), full)
        return full[start:stop]

    # ---------------------------------------------------------------- summaries
    def summaries(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """Column summaries over the matched rows (see :func:`column_summary`).

        Cached per (column, filter, table version). Unknown columns and columns
        without a summary (images, ``row``) are left out.
        """
        out = []
        mask = self.mask()
        rows: Rows | None = None
        known = set(self.table.columns) | {"weight"}
        for name in names:
            if name not in known:
                continue
            reads = name in ("weight", self.table.label) or _reads_weights(self._filter)
            key = (name, self._filter, _data_key(self.table, reads))
            hit = self._summaries.get_(key)
            if hit is None:
                if mask is not None and rows is None:  # once for all the columns
                    rows = Rows.of(mask, self._matched_ids())
                hit = column_summary(self.table, name, rows)
                if hit is None:
                    continue
                self._summaries.put(key, hit)
            cond = self._conditions.get(name)
            if hit["kind"] == "histogram":
                brush = [cond.lo, cond.hi] if cond is not None and cond.lo is not None else None
                out.append({**hit, "brush": brush})
            else:
                out.append({**hit, "picked": cond.value if cond is not None else None})
        return out

    def condition(
        self,
        column: str,
        *,
        lo: float | None = None,
        hi: float | None = None,
        value: Any = None,
        clear: bool = False,
    ) -> str:
        """The filter text with a condition on ``column`` added, replaced or removed.

        A brush gives ``lo``/``hi`` (snapped outwards to the histogram's bin edges,
        so the condition selects exactly the rows of the brushed bars); a click on
        a top value gives ``value``; ``clear`` removes the column's condition. Only
        the condition this view added for the column last is replaced, and only
        while it is still a top-level ``and`` term of the filter; everything else
        the user typed stays as typed.

        Returns
        -------
        str
            The new filter text (not applied: the caller sets it, so it is
            checked and undoable like typed text).
        """
        if column != "weight" and column not in self.table.columns:
            raise ValueError(f"unknown column {column[:100]!r}")
        old = self._conditions.get(column)
        cond: _Condition | None
        if clear:
            cond = None
        elif value is not None:
            cond = self._value_term(column, value)
        else:
            cond = self._range_term(column, lo, hi)
        text = refine_filter(self._filter, old.text if old else None, cond.text if cond else None)
        # remembered once the caller sets this text as the filter (set_filter)
        self._proposed = (text, column, cond)
        return text

    def active_condition(self, column: str) -> _Condition | None:
        """The condition a brush or click added for ``column``, while it is in the filter."""
        return self._conditions.get(column)

    def _value_term(self, column: str, value: Any) -> str:
        binned = _bin(self.table, column)
        if binned is None or binned.kind != "values" or binned.labels is None:
            raise ValueError(f"column {column!r} has no values to pick; brush a range instead")
        if isinstance(binned.labels, list):
            texts = [_text(v) for v in binned.labels]
            at = texts.index(value) if value in texts else -1
        else:  # text: found by Arrow, not by a Python list of every distinct value
            import pyarrow.compute as pc

            at = pc.index(binned.labels, str(value)).as_py() if isinstance(value, str) else -1
        if at < 0:
            raise ValueError(f"column {column!r} has no value {str(value)[:100]!r}")
        real = _labels_at(binned.labels, np.array([at]))[0]
        text = value_condition(column, real, label=column == self.table.label)
        return _Condition(text, value=_text(real))

    def _range_term(self, column: str, lo: float | None, hi: float | None) -> str:
        binned = _bin(self.table, column)
        if binned is None or binned.kind != "histogram" or binned.edges is None:
            raise ValueError(f"column {column!r} is not numeric; pick a value instead")
        if lo is None or hi is None:
            raise ValueError("a brush needs both lo and hi")
        edges = binned.edges
        lo, hi = sorted((float(lo), float(hi)))
        # snap outwards to whole bins: the condition then selects the brushed bars' rows
        i = int(np.clip(np.searchsorted(edges, lo, side="right") - 1, 0, len(edges) - 2))
        j = int(np.clip(np.searchsorted(edges, hi, side="left"), i + 1, len(edges) - 1))
        last = j == len(edges) - 1
        a, b = float(edges[i]), float(edges[j])
        return _Condition(range_condition(column, a, b, closed=last), lo=a, hi=b)


def _reads_weights(text: str) -> bool:
    if not text.strip():
        return False
    try:
        return "weight" in query.columns_used(query.parse(text))
    except FilterError:
        return True
