"""``WeightWidget``: the notebook face of a :class:`~weightwidget.table.WeightTable`.

A thin adapter, shaped like quak's widget: synced traits carry the small state
either side may set, custom messages ask for rows and edits, and every answer
comes from the view (:class:`weightwidget.view.TableView`: filter, sort,
selection, pages, summaries) or the table (edits, history). What the page may
send is checked in one place, :mod:`weightwidget._protocol`.
"""

from __future__ import annotations

import logging
import pathlib
import time
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from . import _protocol as protocol
from . import _serialize
from ._protocol import ProtocolError, clip
from .errors import FilterError, NothingChangedWarning
from .view import TableView, suggested_labels, suggestion, suggestions, table_version

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
#: Revisions the history panel lists (the newest).
HISTORY_ROWS = 200
#: Requests slower than this are logged.
SLOW_MS = 250.0
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
        Initially selected row ids (rows the filter shows).

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

    runs = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    """list of dict: the newest 50 runs (``table.runs()``), oldest first: ``run,
    revision`` (computed at), ``committed, created, kind, columns, headline``
    (a few aggregates) (read-only). The history panel shows them beside the
    revisions."""

    can_undo = traitlets.Bool(False, read_only=True).tag(sync=True)
    """bool: whether there is an edit to undo (read-only)."""

    can_redo = traitlets.Bool(False, read_only=True).tag(sync=True)
    """bool: whether there is an undone edit to redo (read-only)."""

    filter_error = traitlets.Dict(default_value=None, allow_none=True, read_only=True).tag(
        sync=True
    )
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
        for attr in ("weights", "revision", "column", "columns", "set_weights", "subscribe"):
            if not hasattr(table, attr):
                raise TypeError(
                    f"table must be a weightwidget.WeightTable; got {type(table).__name__} "
                    f"(no {attr!r}). Wrap data with WeightTable.from_pandas(...)"
                )
        self._table = table
        # a bad filter raises FilterError here, before a comm is opened
        self._view = TableView(table, filter=filter)
        self._seen_revision = -1
        self._runs_version: Any = None
        super().__init__()
        self._handlers: dict[str, Callable[[dict[str, Any]], tuple[dict[str, Any], list]]] = {
            kind: getattr(self, f"_answer_{kind}") for kind in protocol.REQUESTS
        }
        with self.hold_trait_notifications():
            self._set("n_rows", len(table))
            self._set("label", table.label)
            self._refresh_table()
            self.filter = filter
            self.sort_by = sort_by
            self.sort_ascending = sort_ascending
            self.selected = list(selected)
        self._sync_view()
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

    @property
    def table_view(self) -> TableView:
        """TableView: the filter, sort and selection this widget shows."""
        return self._view

    def selection(self) -> np.ndarray:
        """Row ids a "selection" bulk action applies to (all matching if ``select_all``).

        Returns
        -------
        ndarray of int64
            Sorted row ids, all shown by the filter.
        """
        return self._view.selection()

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
    # One place checks what the page sends (the contract in _protocol, then the
    # view); the same checks guard assignments from Python (validators below).
    def _ctx(self) -> dict[str, int]:
        """Bounds the contract's specs refer to (see ``_protocol``)."""
        matched = int(self.matched)
        return {
            "last_row": int(self.n_rows) - 1,
            "matched": matched,
            "last_match": matched - 1,
            "revision": int(self._table.revision),
        }

    def _check_selected(self, value: Any, filter: str) -> list[int]:
        try:
            ids = protocol.check_trait("selected", value, self._ctx())
            return self._view.check_selection(ids, filter=filter).tolist()
        except ValueError as e:  # ProtocolError too
            raise traitlets.TraitError(str(e)) from None

    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        text = proposal["value"]
        if len(text) > protocol.MAX_FILTER:
            protocol.check_trait("filter", text, {})  # raises with the limit
        self._view.check_filter(text)  # raises FilterError with the position
        return text

    @traitlets.validate("sort_by")
    def _valid_sort_by(self, proposal: dict[str, Any]) -> str | None:
        try:
            return self._view.check_sort(proposal["value"])
        except ValueError as e:
            raise traitlets.TraitError(str(e)) from None

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> list[int]:
        return self._check_selected(proposal["value"], self.filter)

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
            text = values.get("filter", self.filter)
            try:
                self._view.check_filter(text)
                if "sort_by" in values:
                    values["sort_by"] = self._view.check_sort(values["sort_by"])
                if "selected" in values:
                    values["selected"] = self._check_selected(values["selected"], text)
            except FilterError as e:
                bad_filter = e
            except (ValueError, traitlets.TraitError) as e:
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

    # ------------------------------------------------------------------ traits -> view
    @traitlets.observe("filter")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._view.set_filter(change["new"])  # drops selected rows the filter hides
        self._set("filter_error", None)
        self._sync_view()

    @traitlets.observe("sort_by", "sort_ascending")
    def _on_sort(self, change: dict[str, Any]) -> None:
        self._view.set_sort(self.sort_by, self.sort_ascending)
        self._sync_view()

    @traitlets.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        # notifications of one change come in the order the keys were set: the selection
        # was validated against the new filter, so the view takes that filter first
        if self._view.filter != self.filter:
            self._view.set_filter(self.filter)
        self._view.select(change["new"])
        if change["new"] and self.select_all:
            self.select_all = False

    @traitlets.observe("select_all")
    def _on_select_all(self, change: dict[str, Any]) -> None:
        self._view.set_select_all(change["new"])
        if change["new"] and self.selected:
            self.selected = []

    def _sync_view(self) -> None:
        """Copy the view's selection and count into traits; ask the page to refetch."""
        v = self._view
        with self.hold_trait_notifications():
            if self.select_all != v.select_all:
                self.select_all = v.select_all
            selected = v.selected.tolist()
            if selected != self.selected:
                self.selected = selected
            self._set("matched", v.matched)
            self._set("view", self.view + 1)

    # ------------------------------------------------------------------ table -> traits
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
        classes = _serialize.classes_payload(t)
        weight_sum = sum(c["weight_sum"] for c in classes)
        self._set("classes", classes)
        self._set("summary", _serialize.summary_payload(t.weights, weight_sum))
        # only the newest revisions travel: the table reads just those headers
        self._set("history", _serialize.history_payload(t.history(limit=HISTORY_ROWS)))
        self._refresh_runs()
        self._refresh_undo()

    def _refresh_runs(self) -> None:
        # runs change only with the column set (a new run's columns)
        version = table_version(self._table)[1]  # type: ignore[index]
        if version != self._runs_version:
            self._runs_version = version
            runs = getattr(self._table, "runs", None)
            if runs is not None:
                self._set("runs", _serialize.runs_payload(runs(), protocol.MAX_RUNS))

    def _refresh_undo(self) -> None:
        t = self._table
        self._set("can_undo", bool(getattr(t, "can_undo", True)))
        self._set("can_redo", bool(getattr(t, "can_redo", True)))

    def _on_table_change(self, table: WeightTable) -> None:
        with self.hold_trait_notifications():
            self._refresh_table()
            self._view.refresh()  # a filter on weight may hide selected rows now
            self._sync_view()

    # ------------------------------------------------------------------ requests
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
        # an id outside the contract cannot be the page's: answer it with a null id
        ok_id = type(rid) is int and 0 <= rid <= protocol.MAX_SAFE_INT
        self.send({"id": rid if ok_id else None, **reply}, bufs)

    def _done(self, revision: int, message: str, rows: int) -> tuple[dict[str, Any], list]:
        return {
            "ok": True,
            "revision": revision,
            "rows": rows,
            "message": f"r{revision}: {message}",
        }, []

    def _answer_rows(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        start, count = msg["start"], msg["count"]
        ids = self._view.ids(start, start + count)
        meta, bufs = _serialize.encode_rows(self._table, ids, self.columns)
        reply = {"kind": "rows", "view": self.view, "start": start, "count": len(ids)}
        return {**reply, "total": self.matched, **meta}, bufs

    def _answer_edit(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        row, value = msg["row"], msg["value"]
        text = f"set weight of row {row} to {value:g}"
        return self._done(self._table.set_weights([row], value, message=text), text, 1)

    def _where(self, target: str) -> tuple[Any, int, str]:
        """The ``where`` of a bulk action, how many rows it covers, and words for it."""
        v = self._view
        if target == "selection" and not v.select_all:
            rows = v.selection()  # only rows the filter shows
            if rows.size == 0:
                raise RequestError("nothing is selected; select rows or apply to all matching rows")
            return rows, int(rows.size), f"{_count(rows.size)} selected"
        # all matching: hand the table the filter text itself; it resolves it under the
        # writer lock (after picking up other processes' commits), from the mask cache
        if v.filter.strip():
            return v.filter, v.matched, f"{_count(v.matched)} matching `{v.filter}`"
        return None, self.n_rows, f"all {_count(self.n_rows)}"

    def _answer_bulk(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        action, target = msg["action"], msg["target"]
        if action in ("set", "scale") and "value" not in msg:
            raise RequestError(f"value must be a number for {action!r}; got nothing")
        where, count, words = self._where(target)
        t = self._table
        if action == "set":
            text = f"set weight to {msg['value']:g} for {words}"
            rev = t.set_weights(where, msg["value"], message=text)
        elif action == "scale":
            text = f"multiply weight by {msg['value']:g} for {words}"
            rev = t.scale_weights(where, msg["value"], message=text)
        elif action == "balance":
            text = f"rebalance classes (inverse frequency) over {words}"
            rev = t.balance("inverse_frequency", where, message=text)
        else:
            text = f"{action} {words}"
            rev = t.set_weights(where, 0.0 if action == "exclude" else 1.0, message=text)
        return self._done(rev, text, count)

    def _answer_select_range(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        lo, hi = sorted((msg["start"], msg["stop"]))
        if hi - lo + 1 > MAX_RANGE:
            raise RequestError(
                f"a range selects at most {MAX_RANGE:,} rows; got {hi - lo + 1:,}. "
                "Use a filter and 'Select all matching' instead"
            )
        ids = self._view.ids(lo, hi + 1)
        if msg.get("add") is True and not self.select_all:
            ids = np.union1d(ids, self._view.selection())
        with self.hold_trait_notifications():
            self.select_all = False
            self.selected = ids.tolist()
        return {"ok": True, "rows": len(self.selected)}, []

    def _commit_or_say(self, what: str, action: Callable[[], int]) -> tuple[dict[str, Any], list]:
        """Run undo/redo/revert; one that would change no row commits nothing and says so."""
        before = self._table.revision
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NothingChangedWarning)
            rev = action()
        self._refresh_undo()  # undo state comes from the store's history
        quiet = [w for w in caught if issubclass(w.category, NothingChangedWarning)]
        for w in caught:
            if w not in quiet:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if quiet or rev == before:
            text = str(quiet[0].message) if quiet else f"{what}: nothing to change"
            return {"ok": True, "revision": rev, "rows": 0, "message": clip(text)}, []
        return self._done(rev, what, self._last_rows_changed())

    def _answer_undo(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        return self._commit_or_say("undo", self._table.undo)

    def _answer_redo(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        return self._commit_or_say("redo", self._table.redo)

    def _answer_revert(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        target = msg["revision"]
        return self._commit_or_say(f"revert to r{target}", lambda: self._table.revert(target))

    def _last_rows_changed(self) -> int:
        return int(self.history[-1]["rows_changed"]) if self.history else 0

    def _answer_summaries(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        # computed on the matched rows, cached per (column, filter, table version);
        # only bins and top values travel
        summaries = self._view.summaries(msg["columns"])
        return {"kind": "summaries", "view": self.view, "summaries": summaries}, []

    def _answer_brush(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        # the condition goes into the filter as text (quoted by the kernel), so it shows
        # in the filter box, stays editable, and passes the same checks as typed text
        text = self._view.condition(
            msg["column"],
            lo=msg.get("lo"),
            hi=msg.get("hi"),
            value=msg.get("value"),
            clear=msg.get("clear", False),
        )
        if len(text) > protocol.MAX_FILTER:
            raise RequestError(f"the filter would exceed {protocol.MAX_FILTER:,} characters")
        self.filter = text
        return {"ok": True, "filter": self.filter, "matched": self.matched}, []

    def _answer_suggestions(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        # counted in the view, cached per table version (one count_nonzero per line
        # after a weight edit)
        items = [s.payload() for s in suggestions(self._table)]
        return {"kind": "suggestions", "revision": self._table.revision, "items": items}, []

    def _answer_suggestion_action(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
        # one named revision: "exclude 412 label issues of run r3"
        item = suggestion(self._table, msg["key"])
        action, v, t = msg["action"], self._view, self._table
        if action not in item.actions:
            offered = ", ".join(item.actions) or "no action"
            raise RequestError(f"{item.title} offers {offered}, not {action!r}")
        if v.filter != item.filter:
            raise RequestError(
                f"the table no longer shows the {item.noun[1]} (its filter is "
                f"{protocol.short(v.filter, 80)}); click the line to show them again"
            )
        if action == "scale" and "value" not in msg:
            raise RequestError("value must be the factor for 'scale'; got nothing")
        selected = msg["target"] == "selection" and not v.select_all
        if selected and v.selection().size == 0:
            raise RequestError("nothing is selected; select rows or apply to the shown rows")
        # the shown rows go as the filter text, resolved under the writer lock
        where: Any = v.selection() if selected else item.filter
        count = int(where.size) if selected else v.matched
        if action == "relabel":
            assert item.run is not None  # only a run's lines offer it
            ids = where if selected else np.flatnonzero(v.mask())
            change, labels = suggested_labels(t, item.run, ids)
            if change.size == 0:
                raise RequestError(
                    f"none of the {item.rows_text(count, selected=selected)} has a suggested "
                    "label other than its label; nothing to relabel"
                )
            text = (
                f"relabel {item.rows_text(change.size, selected=selected)} to the suggested label"
            )
            if change.size < count:
                text += f" ({count - change.size:,} already carry it or have none)"
            return self._done(t.set_labels(change, labels, message=text), text, int(change.size))
        words = item.rows_text(count, selected=selected)
        if action == "scale":
            factor = msg["value"]
            text = f"{'down' if factor < 1 else 'up'}-weight {words} (weight × {factor:g})"
            rev = t.scale_weights(where, factor, message=text)
        else:
            text = f"{action} {words}"
            rev = t.set_weights(where, 0.0 if action == "exclude" else 1.0, message=text)
        return self._done(rev, text, count)

    def _answer_ping(self, msg: dict[str, Any]) -> tuple[dict[str, Any], list]:
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
