"""``WeightWidget``: the notebook face of a :class:`~weightwidget.table.WeightTable`.

Small state lives in synced traits; rows travel as binary pages on request
(custom messages, see ``_on_msg``). The kernel is the source of truth: the page
asks, the table edits, the traits follow the table.
"""

from __future__ import annotations

import logging
import pathlib
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from . import _serialize
from .errors import FilterError
from .query import columns_used, parse, sort_order

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = ["WeightWidget"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_STATIC = pathlib.Path(__file__).parent / "static"
#: Most rows one "rows" request may ask for.
MAX_PAGE = 1000
#: Most rows one shift-click range may select (select all matching has no limit).
MAX_RANGE = 100_000
#: Positions answered from a partial sort while the full sort runs in a worker.
TOP_K = 1000
#: Requests slower than this are logged.
SLOW_MS = 250.0
_BULK_ACTIONS = ("set", "scale", "exclude", "include", "balance")
_TARGETS = ("selection", "matched")
# traits only the kernel sets; the page's attempts are dropped and the value re-sent
_KERNEL_OWNED = (
    "matched",
    "revision",
    "view",
    "n_rows",
    "label",
    "columns",
    "classes",
    "summary",
    "history",
    "can_undo",
    "can_redo",
    "filter_error",
    "error",
)


_SORTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="weightwidget-sort")


def _top_order(values: Any, mask: np.ndarray | None, ascending: bool, k: int) -> np.ndarray | None:
    """The first ``k`` row ids of the stable sort of a float column, or None.

    Same order as ``WeightTable.sort_order`` (ties by row id, NaN last), found in
    O(n) with ``argpartition``; None when that is not worth it (not floats, few
    rows, or many ties at the cut).
    """
    if not isinstance(values, np.ndarray) or values.ndim != 1 or values.dtype.kind != "f":
        return None
    rows = None if mask is None else np.flatnonzero(mask)
    vals = values if rows is None else values[rows]
    if vals.size <= 4 * k:
        return None
    key = vals if ascending else -vals
    cut = np.partition(key, k - 1)[k - 1]
    if np.isnan(cut):
        return None
    take = np.flatnonzero(key <= cut)
    if take.size > 2 * k:  # many ties at the cut: the full sort is as quick
        return None
    ids = take if rows is None else rows[take]
    first = np.lexsort((ids, key[take]))[:k]
    return ids[first]


class RequestError(ValueError):
    """A message from the page is malformed; the reply carries this text."""


def _int(msg: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = msg.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RequestError(f"{key} must be an integer; got {value!r}")
    if not lo <= value <= hi:
        raise RequestError(f"{key} must be in [{lo}, {hi}]; got {value}")
    return value


def _number(msg: dict[str, Any], key: str) -> float:
    value = msg.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise RequestError(f"{key} must be a number; got {value!r}")
    return float(value)


def _count(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


class WeightWidget(anywidget.AnyWidget):
    """A virtual table of a :class:`WeightTable` with weight editing and history.

    Parameters
    ----------
    table : WeightTable
        The table to show and edit. Edits made here, in Python
        (``table.set_weights``) or by another process (found by
        ``table.latest()``, polled by the page every 2 s) all show up.
    filter : str, default=""
        Initial filter, e.g. ``"label == 3 and loss > 2"``.
    sort_by : str or None, default=None
        Initial sort column (also ``"weight"`` or ``"row"``).
    sort_ascending : bool, default=True
        Initial sort direction.
    selected : sequence of int, default=()
        Initially selected row ids.

    Raises
    ------
    TypeError
        For an unknown keyword argument or a ``table`` that is not a WeightTable.
    FilterError
        For an invalid ``filter``.

    Examples
    --------
    >>> w = WeightWidget(table, filter="label == 3")  # doctest: +SKIP
    >>> w.matched  # doctest: +SKIP
    1204
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    filter = traitlets.Unicode("").tag(sync=True)
    """str: the filter in the safe filter language; ``""`` shows every row.

    Setting an invalid filter from Python raises :class:`FilterError`; from the
    page, the error is shown inline (``filter_error``) and the last good filter
    is kept. Default ``""``."""

    sort_by = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    """str or None: the column rows are sorted by (``"weight"`` and ``"row"`` too);
    ``None`` (or ``""``) keeps dataset order. Default ``None``."""

    sort_ascending = traitlets.Bool(True).tag(sync=True)
    """bool: sort direction for ``sort_by``. Default ``True``."""

    selected = traitlets.List(traitlets.Int()).tag(sync=True)
    """list of int: the selected row ids (sorted, unique). Default ``[]``."""

    select_all = traitlets.Bool(False).tag(sync=True)
    """bool: every row matching ``filter`` is selected ("select all matching");
    ``selected`` is then empty. Cleared when the filter changes. Default ``False``."""

    matched = traitlets.Int(0, read_only=True).tag(sync=True)
    """int: how many rows match ``filter`` (read-only)."""

    revision = traitlets.Int(0, read_only=True).tag(sync=True)
    """int: the table's current revision (read-only; use ``table.revert``)."""

    view = traitlets.Int(0, read_only=True).tag(sync=True)
    """int: bumped whenever the rows on screen must be fetched again (read-only)."""

    n_rows = traitlets.Int(0, read_only=True).tag(sync=True)
    """int: rows in the table (read-only)."""

    label = traitlets.Unicode("", read_only=True).tag(sync=True)
    """str: the label column's name (read-only)."""

    columns = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    """list of dict: displayed columns ``{"name", "kind", "role"}`` (read-only)."""

    classes = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    """list of dict: per class ``value, count, weight_sum, share, effective_share,
    filter`` (read-only)."""

    summary = traitlets.Dict(read_only=True).tag(sync=True)
    """dict: ``rows, included, weight_sum, ess`` (effective sample size
    (Σw)²/Σw²) (read-only)."""

    history = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    """list of dict: the newest 200 revisions ``revision, parent, created, author,
    message, rows_changed`` (read-only)."""

    can_undo = traitlets.Bool(False, read_only=True).tag(sync=True)
    """bool: whether there is an edit to undo (read-only)."""

    can_redo = traitlets.Bool(False, read_only=True).tag(sync=True)
    """bool: whether there is an undone edit to redo (read-only)."""

    filter_error = traitlets.Dict(None, allow_none=True, read_only=True).tag(sync=True)
    """dict or None: the last filter typed in the page that failed to parse,
    ``{"text", "message", "position"}``; ``None`` once a good filter is set."""

    error = traitlets.Unicode("", read_only=True).tag(sync=True)
    """str: the last error from a state change sent by the page (read-only)."""

    def __init__(
        self,
        table: WeightTable,
        *,
        filter: str = "",
        sort_by: str | None = None,
        sort_ascending: bool = True,
        selected: Any = (),
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"WeightWidget() got unexpected keyword arguments {sorted(kwargs)}; "
                "allowed: filter, sort_by, sort_ascending, selected"
            )
        for attr in ("weights", "revision", "mask", "sort_order", "set_weights", "subscribe"):
            if not hasattr(table, attr):
                raise TypeError(
                    f"table must be a weightwidget.WeightTable; got {type(table).__name__} "
                    f"(no {attr!r}). Wrap data with WeightTable.from_pandas(...)"
                )
        if filter:
            table.mask(filter)  # a bad filter raises FilterError before a comm is opened
        self._table = table
        self._view_ids: np.ndarray | None = None  # None: all rows in dataset order
        self._pending: tuple[str, bool, Any, Future[np.ndarray], np.ndarray | None] | None = None
        self._sorts: dict[tuple[str, bool], tuple[Any, np.ndarray]] = {}
        self._mask_key: tuple[Any, ...] | None = None
        self._mask_refs: list[Any] = []
        self._mask: np.ndarray | None = None
        self._seen_revision = -1
        self._counts: np.ndarray | None = None  # rows per class never change
        super().__init__()
        self._handlers: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], list]]] = {
            "rows": self._rows,
            "edit": self._edit,
            "bulk": self._bulk,
            "select_range": self._select_range,
            "undo": self._undo,
            "redo": self._redo,
            "revert": self._revert,
            "ping": self._ping,
        }
        with self.hold_trait_notifications():
            self._set("n_rows", len(table))
            self._set("label", table.label)
            self._refresh_table()
            self.filter = filter
            self.sort_by = sort_by
            self.sort_ascending = sort_ascending
            self.selected = list(selected)
        self._update_view()
        self.on_msg(self._on_msg)
        ref = weakref.WeakMethod(self._on_table_change)

        def on_change(tbl: WeightTable) -> None:
            method = ref()
            if method is not None:
                method(tbl)

        self._unsubscribe = table.subscribe(on_change)

    @property
    def table(self) -> WeightTable:
        """WeightTable: the table this widget shows."""
        return self._table

    def selection(self) -> np.ndarray:
        """Row ids a "selection" bulk action applies to (all matching if ``select_all``).

        Returns
        -------
        ndarray of int64
            Sorted row ids.
        """
        if self.select_all:
            return self._matched_ids()
        return np.asarray(self.selected, dtype=np.int64)

    def close(self) -> None:
        """Stop following the table and close the widget."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
            self._unsubscribe = None
        super().close()

    def _set(self, name: str, value: Any) -> None:
        """Set a read-only (kernel-owned) trait."""
        self.set_trait(name, value)

    # ------------------------------------------------------------------ validation
    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        text = proposal["value"]
        self._filter_mask(text)  # raises FilterError with the position
        return text

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: dict[str, Any]) -> str | None:
        by = proposal["value"]
        if by is None or by == "":
            return None
        names = [c["name"] for c in self.columns if c["kind"] != "image"]
        if by not in names:
            raise traitlets.TraitError(
                f"sort_by must be one of the sortable columns {names} or None; got {by!r}"
            )
        return by

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> list[int]:
        ids = np.asarray(proposal["value"], dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_rows):
            bad = ids[(ids < 0) | (ids >= self.n_rows)]
            raise traitlets.TraitError(
                f"selected must hold row ids in [0, {self.n_rows}); got {int(bad[0])}"
                + (f" (and {bad.size - 1} more)" if bad.size > 1 else "")
            )
        return np.unique(ids).tolist()

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply a state change sent by the page, refusing bad values in place.

        Kernel-owned traits are re-sent; an invalid filter sets ``filter_error``
        and keeps the last good filter; other invalid values set ``error``.
        """
        data = dict(sync_data)
        resend = [k for k in _KERNEL_OWNED if k in data]
        for key in resend:
            del data[key]
        if "filter" in data:
            text = data["filter"]
            try:
                if not isinstance(text, str):
                    raise FilterError("the filter must be text", text=str(text), position=0)
                self._filter_mask(text)
            except FilterError as e:
                del data["filter"]
                resend.append("filter")
                pos = getattr(e, "position", 0)
                self._set(
                    "filter_error",
                    {
                        "text": str(text),
                        "message": getattr(e, "reason", str(e)),
                        "position": int(pos),
                    },
                )
        for key in ("sort_by", "sort_ascending", "selected", "select_all"):
            if key not in data:
                continue
            try:
                self.traits()[key]._validate(self, data[key])
            except (traitlets.TraitError, ValueError, TypeError) as e:
                del data[key]
                resend.append(key)
                self._set("error", f"{key}: {e}")
        super().set_state(data)
        if resend:
            self.send_state(sorted(set(resend)))

    # ------------------------------------------------------------------ view state
    def _filter_mask(self, text: str) -> np.ndarray | None:
        """The mask of ``text`` (cached per revision when it reads weights)."""
        if not text.strip():
            return None
        t = self._table
        used = columns_used(parse(text))
        # the mask changes with the weights (if it reads them) and with replaced columns
        # (set_columns); ids are safe as the key holds the arrays alive in _mask_refs
        refs = [t.column(c) for c in sorted(used) if c in t.columns]
        key = (text, t.revision if "weight" in used else -1, tuple(id(r) for r in refs))
        if self._mask_key != key:
            self._mask = t.mask(text)
            self._mask_key, self._mask_refs = key, refs
        return self._mask

    def _matched_ids(self) -> np.ndarray:
        mask = self._filter_mask(self.filter)
        return np.arange(self.n_rows) if mask is None else np.flatnonzero(mask)

    def _update_view(self) -> None:
        """Recompute the rows on screen (filter, then sort) and bump ``view``."""
        mask = self._filter_mask(self.filter)
        self._pending = None
        matched = self.n_rows if mask is None else int(np.count_nonzero(mask))
        if not self.sort_by:
            self._view_ids = None if mask is None else np.flatnonzero(mask)
        else:
            by, asc = self.sort_by, self.sort_ascending
            values = self._table.column(by)
            cached = self._sorts.get((by, asc))
            if cached is not None and cached[0] is values:
                order = cached[1]
                self._view_ids = order if mask is None else order[mask[order]]
            else:
                # A full sort of 1M floats takes ~170 ms: answer the first pages from a
                # partial top-k sort and finish the full sort in a worker thread (numpy
                # releases the GIL while sorting), awaited only when the page scrolls on.
                # The worker calls the pure query.sort_order (the table's caches are not
                # thread-safe); the order is the table's: stable, ties by row id, NaN last.
                top = _top_order(values, mask, asc, TOP_K) if by != "row" else None
                if by == "row":
                    future: Future[np.ndarray] = Future()
                    future.set_result(self._table.sort_order("row", ascending=asc))
                else:
                    future = _SORTER.submit(sort_order, values, ascending=asc)
                self._pending = (by, asc, values, future, mask)
                self._view_ids = top
                if top is None:
                    self._resolve_view()
        with self.hold_trait_notifications():
            self._set("matched", matched)
            self._set("view", self.view + 1)

    def _resolve_view(self) -> np.ndarray | None:
        """The complete view order (waits for a pending sort)."""
        if self._pending is not None:
            by, asc, values, future, mask = self._pending
            order = future.result()
            self._sorts[(by, asc)] = (values, order)
            while len(self._sorts) > 4:
                del self._sorts[next(iter(self._sorts))]
            self._view_ids = order if mask is None else order[mask[order]]
            self._pending = None
        return self._view_ids

    def _view_slice(self, lo: int, hi: int) -> np.ndarray:
        """Row ids at view positions ``lo:hi``."""
        view = self._view_ids
        if self._pending is not None and (view is None or hi > len(view)):
            view = self._resolve_view()
        return np.arange(lo, hi, dtype=np.int64) if view is None else view[lo:hi]

    @traitlets.observe("filter")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._set("filter_error", None)
        if self.select_all:
            self.select_all = False
        self._update_view()

    @traitlets.observe("sort_by", "sort_ascending")
    def _on_sort(self, change: dict[str, Any]) -> None:
        self._update_view()

    @traitlets.observe("select_all")
    def _on_select_all(self, change: dict[str, Any]) -> None:
        if change["new"] and self.selected:
            self.selected = []

    def _refresh_table(self) -> None:
        """Copy the table's revision, columns, classes, summary and history into traits."""
        t = self._table
        cols = [{"name": "row", "kind": "numeric", "role": "row"}]
        for name in t.columns:
            role = "label" if name == t.label else "data"
            cols.append({"name": name, "kind": t.column_kind(name), "role": role})
            if role == "label":
                cols.append({"name": "weight", "kind": "numeric", "role": "weight"})
        if cols != self.columns:
            self._set("columns", cols)
        self._set("revision", t.revision)
        self._seen_revision = t.revision
        if self._counts is None:
            self._counts = _serialize.class_counts(t)
        classes = _serialize.classes_payload(t, self._counts)
        weight_sum = sum(c["weight_sum"] for c in classes)
        self._set("classes", classes)
        self._set("summary", _serialize.summary_payload(t.weights, weight_sum))
        self._set("history", _serialize.history_payload(t.history()))
        self._refresh_undo()

    def _refresh_undo(self) -> None:
        t = self._table
        self._set("can_undo", bool(getattr(t, "can_undo", True)))
        self._set("can_redo", bool(getattr(t, "can_redo", True)))

    def _on_table_change(self, table: WeightTable) -> None:
        with self.hold_trait_notifications():
            self._refresh_table()
            self._update_view()

    # ------------------------------------------------------------------ messages
    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        """Dispatch one request from the page; always answer with its id."""
        rid = content.get("id") if isinstance(content, dict) else None
        kind = content.get("kind") if isinstance(content, dict) else None
        t0 = time.perf_counter()
        bufs: list = []
        try:
            if not isinstance(content, dict):
                raise RequestError(f"a request must be an object; got {type(content).__name__}")
            if not isinstance(rid, int) or isinstance(rid, bool):
                raise RequestError(f"id must be an integer; got {rid!r}")
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                raise RequestError(
                    f"unknown kind {kind!r}; expected one of {sorted(self._handlers)}"
                )
            reply, bufs = handler(content)
        except (ValueError, TypeError, KeyError, IndexError, traitlets.TraitError) as e:
            reply, bufs = {"error": str(e)}, []
        except Exception as e:  # a bug must not kill the widget: log it, tell the page
            logger.exception("weightwidget: %s request failed", kind)
            reply, bufs = {"error": f"internal error in {kind!r}: {type(e).__name__}: {e}"}, []
        ms = (time.perf_counter() - t0) * 1000
        if ms > SLOW_MS:
            logger.info("weightwidget: slow %s request: %.0f ms", kind, ms)
        self.send({"id": rid if isinstance(rid, int) else None, **reply}, bufs)

    def _rows(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        start = _int(msg, "start", 0, max(self.matched, 0))
        count = _int(msg, "count", 0, MAX_PAGE)
        stop = min(start + count, self.matched)
        ids = self._view_slice(start, stop)
        meta, bufs = _serialize.encode_rows(self._table, ids, self.columns)
        reply = {"kind": "rows", "view": self.view, "start": start, "count": len(ids)}
        return {**reply, "total": self.matched, **meta}, bufs

    def _done(self, revision: int, message: str, rows: int) -> tuple[dict[str, Any], list]:
        return {
            "ok": True,
            "revision": revision,
            "rows": rows,
            "message": f"r{revision}: {message}",
        }, []

    def _edit(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        row = _int(msg, "row", 0, self.n_rows - 1)
        value = _number(msg, "value")
        text = f"set weight of row {row} to {value:g}"
        return self._done(self._table.set_weights([row], value, message=text), text, 1)

    def _where(self, target: str) -> tuple[Any, int, str]:
        """The ``where`` of a bulk action, how many rows it covers, and words for it."""
        if target == "selection" and not self.select_all:
            rows = np.asarray(self.selected, dtype=np.int64)
            if rows.size == 0:
                raise RequestError("nothing is selected; select rows or apply to all matching rows")
            return rows, int(rows.size), f"{_count(rows.size)} selected"
        # all matching: hand the table the filter text itself; it resolves it from its
        # mask cache under the writer lock, quicker than a million row ids
        if self.filter:
            return self.filter, self.matched, f"{_count(self.matched)} matching `{self.filter}`"
        return None, self.n_rows, f"all {_count(self.n_rows)}"

    def _bulk(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        action, target = msg.get("action"), msg.get("target")
        if action not in _BULK_ACTIONS:
            raise RequestError(f"action must be one of {list(_BULK_ACTIONS)}; got {action!r}")
        if target not in _TARGETS:
            raise RequestError(f"target must be one of {list(_TARGETS)}; got {target!r}")
        where, count, words = self._where(target)
        t = self._table
        if action == "set":
            value = _number(msg, "value")
            text = f"set weight to {value:g} for {words}"
            rev = t.set_weights(where, value, message=text)
        elif action == "scale":
            value = _number(msg, "value")
            text = f"multiply weight by {value:g} for {words}"
            rev = t.scale_weights(where, value, message=text)
        elif action == "balance":
            text = f"rebalance classes (inverse frequency) over {words}"
            rev = t.balance("inverse_frequency", where, message=text)
        else:
            value = 0.0 if action == "exclude" else 1.0
            text = f"{action} {words}"
            rev = t.set_weights(where, value, message=text)
        return self._done(rev, text, count)

    def _select_range(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        last = self.matched - 1
        a, b = _int(msg, "start", 0, last), _int(msg, "stop", 0, last)
        lo, hi = min(a, b), max(a, b)
        if hi - lo + 1 > MAX_RANGE:
            raise RequestError(
                f"a range selects at most {MAX_RANGE:,} rows; got {hi - lo + 1:,}. "
                "Use a filter and 'Select all matching' instead"
            )
        ids = self._view_slice(lo, hi + 1)
        if msg.get("add") is True and not self.select_all:
            ids = np.union1d(ids, np.asarray(self.selected, dtype=np.int64))
        with self.hold_trait_notifications():
            self.select_all = False
            self.selected = ids.tolist()
        return {"ok": True, "rows": len(self.selected)}, []

    def _undo(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        rev = self._table.undo()
        self._refresh_undo()  # the table notifies before it updates its redo stack
        return self._done(rev, "undo", self._last_rows_changed())

    def _redo(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        rev = self._table.redo()
        self._refresh_undo()  # the table notifies before it updates its redo stack
        return self._done(rev, "redo", self._last_rows_changed())

    def _revert(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        target = _int(msg, "revision", 0, self._table.revision)
        rev = self._table.revert(target)
        return self._done(rev, f"revert to r{target}", self._last_rows_changed())

    def _last_rows_changed(self) -> int:
        return int(self.history[-1]["rows_changed"]) if self.history else 0

    def _ping(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        self._table.latest()  # fires the subscription when another process committed
        if self._table.revision != self._seen_revision:
            self._on_table_change(self._table)
        return {"ok": True, "revision": self.revision}, []
