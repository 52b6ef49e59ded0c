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

from . import _protocol as protocol
from . import _serialize
from ._protocol import ProtocolError, clip
from .errors import FilterError
from .query import columns_used, parse, sort_order

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = ["WeightWidget"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_STATIC = pathlib.Path(__file__).parent / "static"
#: Most rows one "rows" request may ask for.
MAX_PAGE = protocol.MAX_PAGE
#: Most rows one shift-click range may select (select all matching has no limit).
MAX_RANGE = 100_000
#: Positions answered from a partial sort while the full sort runs in a worker.
TOP_K = 1000
#: Requests slower than this are logged.
SLOW_MS = 250.0


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


#: The page's errors: a request or state change that breaks the contract (see _protocol).
RequestError = ProtocolError


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

    selected = traitlets.List().tag(sync=True)
    """list of int: the selected row ids (sorted, unique). Default ``[]``.

    A selection only holds rows the filter shows: setting hidden rows raises
    (from the page: is refused), and when the filter changes (or an edit changes
    what a filter on ``weight`` shows) the rows it now hides leave the selection,
    so a bulk action on the selection never changes a row the user cannot see."""

    select_all = traitlets.Bool(False).tag(sync=True)
    """bool: every row matching ``filter`` is selected ("select all matching");
    ``selected`` is then empty. Cleared when the filter changes (the new filter's
    rows were never chosen). Default ``False``."""

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
    # One place checks what the page sends (the contract in _protocol); the same
    # checks guard assignments from Python (traitlets validators below).
    def _ctx(self) -> dict[str, int]:
        """Bounds the contract's specs refer to (see ``_protocol``)."""
        matched = int(self.matched)
        return {
            "last_row": int(self.n_rows) - 1,
            "matched": matched,
            "last_match": matched - 1,
            "revision": int(self._table.revision),
        }

    def _check_sort_by(self, by: Any) -> str | None:
        if by is None or by == "":
            return None
        names = [c["name"] for c in self.columns if c["kind"] != "image"]
        if by not in names:
            raise traitlets.TraitError(
                f"sort_by must be one of the sortable columns {names} or None; "
                f"got {protocol.short(by)}"
            )
        return by

    def _check_selected(self, value: Any, mask: np.ndarray | None) -> list[int]:
        """Sorted unique row ids, all shown by the filter whose ``mask`` is given."""
        try:
            ids = protocol.check_trait("selected", value, self._ctx())
        except ProtocolError as e:
            raise traitlets.TraitError(str(e)) from None
        arr = np.unique(np.asarray(ids, dtype=np.int64))
        if mask is not None and arr.size:
            hidden = arr[~mask[arr]]
            if hidden.size:
                more = f" (and {hidden.size - 1} more)" if hidden.size > 1 else ""
                raise traitlets.TraitError(
                    f"selected holds row {int(hidden[0])}{more}, which the filter "
                    f"{protocol.short(self.filter, 80)} hides; select only rows the filter shows"
                )
        return arr.tolist()

    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        text = proposal["value"]
        if len(text) > protocol.MAX_FILTER:
            protocol.check_trait("filter", text, {})  # raises with the limit
        self._filter_mask(text)  # raises FilterError with the position
        return text

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: dict[str, Any]) -> str | None:
        return self._check_sort_by(proposal["value"])

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> list[int]:
        return self._check_selected(proposal["value"], self._filter_mask(self.filter))

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply a state change sent by the page, or refuse all of it.

        Only the page-owned traits (``filter``, ``sort_by``, ``sort_ascending``,
        ``selected``, ``select_all``) may be set, with values of their documented
        shape that the kernel accepts. Otherwise nothing changes: a refused filter
        sets ``filter_error``, anything else sets ``error``, and the keys sent
        are re-sent so the page shows the state that stays.
        """
        values, errors = protocol.check_state(sync_data, self._ctx())
        bad_filter: FilterError | None = None
        if not errors:
            try:
                mask = self._filter_mask(values.get("filter", self.filter))
                if "sort_by" in values:
                    values["sort_by"] = self._check_sort_by(values["sort_by"])
                if "selected" in values:
                    values["selected"] = self._check_selected(values["selected"], mask)
            except FilterError as e:
                bad_filter = e
            except traitlets.TraitError as e:
                errors.append(str(e))
        if errors or bad_filter is not None:
            with self.hold_trait_notifications():
                if bad_filter is not None:
                    self._set("filter_error", _filter_error(values["filter"], bad_filter))
                if errors:
                    self._set("error", clip("; ".join(errors)))
            keys = sync_data if isinstance(sync_data, dict) else {}
            self.send_state(sorted(k for k in keys if isinstance(k, str) and k in self.keys))
            return
        if self.error:
            self._set("error", "")
        super().set_state(values)

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
        with self.hold_trait_notifications():
            self._set("filter_error", None)
            if self.select_all:
                self.select_all = False
            self._prune_selection()
        self._update_view()

    def _prune_selection(self) -> None:
        """Drop selected rows the filter hides (the selection only holds visible rows)."""
        if self.selected:
            visible = self._visible_selection()
            if visible.size != len(self.selected):
                self.selected = visible.tolist()

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
            self._prune_selection()  # a filter on weight may hide rows now
            self._update_view()

    # ------------------------------------------------------------------ messages
    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        """Dispatch one request from the page; always answer with its id."""
        rid = content.get("id") if isinstance(content, dict) else None
        kind = content.get("kind") if isinstance(content, dict) else None
        t0 = time.perf_counter()
        bufs: list = []
        try:
            rid, kind, body = protocol.check_request(content, self._ctx())
            reply, bufs = self._handlers[kind](body)
        except (ValueError, TypeError, KeyError, IndexError, traitlets.TraitError) as e:
            reply, bufs = {"error": clip(str(e))}, []
        except Exception as e:  # a bug must not kill the widget: log it, tell the page
            logger.exception("weightwidget: %s request failed", kind)
            text = f"internal error in {protocol.short(kind, 40)}: {type(e).__name__}: {e}"
            reply, bufs = {"error": clip(text)}, []
        ms = (time.perf_counter() - t0) * 1000
        if ms > SLOW_MS:
            logger.info("weightwidget: slow %s request: %.0f ms", kind, ms)
        ok_id = isinstance(rid, int) and not isinstance(rid, bool)
        self.send({"id": rid if ok_id else None, **reply}, bufs)

    def _rows(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        start, count = msg["start"], msg["count"]
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
        row, value = msg["row"], msg["value"]
        text = f"set weight of row {row} to {value:g}"
        return self._done(self._table.set_weights([row], value, message=text), text, 1)

    def _visible_selection(self) -> np.ndarray:
        """The selected row ids the filter shows.

        All of them, unless the table changed under a filter that reads weights
        since the selection was made.
        """
        rows = np.asarray(self.selected, dtype=np.int64)
        mask = self._filter_mask(self.filter)
        return rows if mask is None or rows.size == 0 else rows[mask[rows]]

    def _where(self, target: str) -> tuple[Any, int, str]:
        """The ``where`` of a bulk action, how many rows it covers, and words for it."""
        if target == "selection" and not self.select_all:
            rows = self._visible_selection()
            if rows.size == 0:
                raise RequestError("nothing is selected; select rows or apply to all matching rows")
            return rows, int(rows.size), f"{_count(rows.size)} selected"
        # all matching: hand the table the filter text itself; it resolves it from its
        # mask cache under the writer lock, quicker than a million row ids
        if self.filter:
            return self.filter, self.matched, f"{_count(self.matched)} matching `{self.filter}`"
        return None, self.n_rows, f"all {_count(self.n_rows)}"

    def _bulk(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        action, target = msg["action"], msg["target"]
        if action in ("set", "scale") and "value" not in msg:
            raise RequestError(f"value must be a number for {action!r}; got nothing")
        where, count, words = self._where(target)
        t = self._table
        if action == "set":
            value = msg["value"]
            text = f"set weight to {value:g} for {words}"
            rev = t.set_weights(where, value, message=text)
        elif action == "scale":
            value = msg["value"]
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
        lo, hi = sorted((msg["start"], msg["stop"]))
        if hi - lo + 1 > MAX_RANGE:
            raise RequestError(
                f"a range selects at most {MAX_RANGE:,} rows; got {hi - lo + 1:,}. "
                "Use a filter and 'Select all matching' instead"
            )
        ids = self._view_slice(lo, hi + 1)
        if msg.get("add") is True and not self.select_all:
            ids = np.union1d(ids, self._visible_selection())
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
        target = msg["revision"]
        rev = self._table.revert(target)
        return self._done(rev, f"revert to r{target}", self._last_rows_changed())

    def _last_rows_changed(self) -> int:
        return int(self.history[-1]["rows_changed"]) if self.history else 0

    def _ping(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        self._table.latest()  # fires the subscription when another process committed
        if self._table.revision != self._seen_revision:
            self._on_table_change(self._table)
        return {"ok": True, "revision": self.revision}, []


def _filter_error(text: str, error: FilterError) -> dict[str, Any]:
    """The ``filter_error`` trait for a refused filter (message cut for the page)."""
    return {
        "text": text,
        "message": clip(getattr(error, "reason", str(error))),
        "position": int(getattr(error, "position", 0)),
    }
