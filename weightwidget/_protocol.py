"""The page-kernel contract, written once.

Every synced trait and every custom message between the page (``js/``) and the
kernel (:mod:`weightwidget.widget`) is described here, with its owner and an
example. The same description

- validates everything the page sends (``check_state``, ``check_request``): a
  bad value is refused with a short message naming the field, the allowed
  range and at most a few hundred characters of what was sent;
- tells which traits the page may set (:data:`PAGE_TRAITS`); every other key
  of a ``set_state`` is refused;
- generates the TypeScript types the page is written against
  (:func:`typescript`, written to ``js/protocol.gen.ts`` by
  ``scripts/gen_protocol.py``; a test fails when that file is stale);
- checks, in the tests, that every reply a handler sends has its documented
  shape (``check_reply``).

Pure Python: no traitlets, no anywidget.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXAMPLES",
    "KERNEL_TRAITS",
    "PAGE_TRAITS",
    "REPLIES",
    "REQUESTS",
    "TRAITS",
    "ProtocolError",
    "check_reply",
    "check_request",
    "check_state",
    "clip",
    "short",
    "typescript",
]

#: Most rows one "rows" request may ask for.
MAX_PAGE = 1000
#: Longest filter text (the filter language refuses longer ones too).
MAX_FILTER = 10_000
#: Most row ids the ``selected`` trait may hold (larger selections: "select all matching").
MAX_SELECTED = 1_000_000
#: Most columns one "summaries" request may ask for.
MAX_SUMMARY_COLUMNS = 256
#: Longest error text sent to the page.
MAX_ERROR = 600
#: How much of an offending value an error message quotes.
MAX_QUOTE = 200
#: Largest integer the page can hold exactly (JavaScript numbers are doubles).
MAX_SAFE_INT = 2**53 - 1

BULK_ACTIONS = ("set", "scale", "exclude", "include", "balance")
TARGETS = ("selection", "matched")
COLUMN_KINDS = ("numeric", "bool", "string", "image")
COLUMN_ROLES = ("row", "weight", "label", "data")
#: The suggestions panel (issue 12): kinds of line and the bulk actions a line offers
#: (the same tuples as weightwidget.view's; a test keeps them equal).
SUGGESTION_KINDS = (
    "label_issues",
    "relabels",
    "hardest",
    "least_confident",
    "label_next",
    "excluded",
)
SUGGESTION_ACTIONS = ("exclude", "scale", "relabel", "include")
HEADLINE_UNITS = ("share", "count", "number")
#: Most runs the ``runs`` trait lists (the newest).
MAX_RUNS = 50


class ProtocolError(ValueError):
    """Something the page sent does not follow the contract; the text says what."""


def short(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was."""
    if isinstance(value, (list, tuple)) and len(value) > 20:
        head = ", ".join(short(v, 40) for v in value[:5])
        return f"[{head}, ...] ({len(value):,} items)"
    if isinstance(value, dict) and len(value) > 20:
        return f"{{...}} ({len(value):,} keys)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        digits = len(str(abs(value)))
        return f"{'-' if value < 0 else ''}{str(abs(value))[:12]}... ({digits:,} digits)"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not break an error message
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def clip(text: str, limit: int = MAX_ERROR) -> str:
    """Cut a message for the page to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- specs
class Spec:
    """One value's shape: checks a value from the page, spells its TypeScript type."""

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> Any:  # pragma: no cover
        """Return the value (normalised) or raise :class:`ProtocolError`."""
        raise NotImplementedError

    def ts(self) -> str:  # pragma: no cover
        """The TypeScript type."""
        raise NotImplementedError


def _bound(b: int | str | None, ctx: Mapping[str, int]) -> int | None:
    if b is None or isinstance(b, int):
        return b
    return ctx.get(b)


@dataclass(frozen=True)
class Int(Spec):
    """An integer in ``[lo, hi]``; a bound may name a value of the context (``"last_row"``)."""

    lo: int | str | None = None
    hi: int | str | None = None

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)  # numpy integers, from Python callers
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"{path} must be an integer; got {short(value)}")
        lo, hi = _bound(self.lo, ctx), _bound(self.hi, ctx)
        lo = -MAX_SAFE_INT if lo is None else lo
        hi = MAX_SAFE_INT if hi is None else hi
        if not lo <= value <= hi:
            if hi < lo:
                raise ProtocolError(
                    f"{path} must be in an empty range (nothing to address); got {short(value)}"
                )
            raise ProtocolError(f"{path} must be in [{lo}, {hi}]; got {short(value)}")
        return value

    def ts(self) -> str:
        return "number"


@dataclass(frozen=True)
class Number(Spec):
    """A finite JSON number (not a bool) at least ``min``; returned as float."""

    min: float | None = None

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> float:
        rule = "a finite number" + ("" if self.min is None else f" >= {self.min:g}")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ProtocolError(f"{path} must be a number; got {short(value)}")
        try:
            num = float(value)
        except OverflowError:  # a JSON integer with hundreds of digits
            raise ProtocolError(f"{path} must be {rule}; got {short(value)}") from None
        if not math.isfinite(num) or (self.min is not None and num < self.min):
            raise ProtocolError(f"{path} must be {rule}; got {short(num)}")
        return num

    def ts(self) -> str:
        return "number"


@dataclass(frozen=True)
class Str(Spec):
    """Text of at most ``max_len`` characters."""

    max_len: int | None = None

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> str:
        if not isinstance(value, str):
            raise ProtocolError(f"{path} must be text; got {short(value)}")
        if self.max_len is not None and len(value) > self.max_len:
            raise ProtocolError(
                f"{path} must be at most {self.max_len:,} characters; got {len(value):,}"
            )
        return value

    def ts(self) -> str:
        return "string"


@dataclass(frozen=True)
class Bool(Spec):
    """``true`` or ``false`` (not 0/1)."""

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{path} must be true or false; got {short(value)}")
        return value

    def ts(self) -> str:
        return "boolean"


@dataclass(frozen=True)
class Const(Spec):
    """Exactly one JSON value (a message's ``kind``, a reply's ``ok``)."""

    value: Any

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> Any:
        if value != self.value or type(value) is not type(self.value):
            raise ProtocolError(f"{path} must be {json.dumps(self.value)}; got {short(value)}")
        return value

    def ts(self) -> str:
        return json.dumps(self.value)


@dataclass(frozen=True)
class Enum(Spec):
    """One of a few strings."""

    values: tuple[str, ...]

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise ProtocolError(f"{path} must be one of {list(self.values)}; got {short(value)}")
        return value

    def ts(self) -> str:
        return " | ".join(json.dumps(v) for v in self.values)


@dataclass(frozen=True)
class Nullable(Spec):
    """``null`` or the inner shape."""

    inner: Spec

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> Any:
        return None if value is None else self.inner.check(value, path, ctx)

    def ts(self) -> str:
        return f"{self.inner.ts()} | null"


@dataclass(frozen=True)
class Array(Spec):
    """A list of items of one shape, at most ``max_len`` long."""

    item: Spec
    max_len: int | None = None

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise ProtocolError(f"{path} must be a list; got {short(value)}")
        if self.max_len is not None and len(value) > self.max_len:
            raise ProtocolError(
                f"{path} must hold at most {self.max_len:,} items; got {len(value):,}"
            )
        if isinstance(self.item, Int):  # row ids: one pass in C for the common case
            return _check_ints(value, self.item, path, ctx)
        return [self.item.check(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]

    def ts(self) -> str:
        inner = self.item.ts()
        return f"({inner})[]" if "|" in inner else f"{inner}[]"


def _check_ints(value: Sequence[Any], spec: Int, path: str, ctx: Mapping[str, int]) -> list[int]:
    if all(type(v) is int for v in value):
        lo, hi = _bound(spec.lo, ctx), _bound(spec.hi, ctx)
        if value and ((lo is not None and min(value) < lo) or (hi is not None and max(value) > hi)):
            bad = next(
                i
                for i, v in enumerate(value)
                if (lo is not None and v < lo) or (hi is not None and v > hi)
            )
            spec.check(value[bad], f"{path}[{bad}]", ctx)  # raises with the message
        if value and (min(value) < -MAX_SAFE_INT or max(value) > MAX_SAFE_INT):
            bad = next(i for i, v in enumerate(value) if abs(v) > MAX_SAFE_INT)
            spec.check(value[bad], f"{path}[{bad}]", ctx)
        return list(value)
    return [spec.check(v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]


@dataclass(frozen=True)
class Obj(Spec):
    """An object with known fields; ``name`` makes it a TypeScript interface."""

    fields: dict[str, Spec]
    optional: frozenset[str] = frozenset()
    name: str | None = None
    doc: str = ""
    docs: dict[str, str] = field(default_factory=dict)

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ProtocolError(f"{path} must be an object; got {short(value)}")
        extra = [k for k in value if k not in self.fields]
        if extra:
            raise ProtocolError(
                f"{path} has unknown field {short(extra[0], 60)}; expected {sorted(self.fields)}"
            )
        out = {}
        for key, spec in self.fields.items():
            name = f"{path}.{key}" if path else key
            if key not in value:
                if key in self.optional:
                    continue
                raise ProtocolError(f"{name} is missing")
            out[key] = spec.check(value[key], name, ctx)
        return out

    def ts(self) -> str:
        if self.name:
            return self.name
        return self.body()

    def body(self) -> str:
        parts = []
        for key, spec in self.fields.items():
            opt = "?" if key in self.optional else ""
            parts.append(f"{key}{opt}: {spec.ts()}")
        return "{ " + "; ".join(parts) + " }"


@dataclass(frozen=True)
class OneOf(Spec):
    """One of several object shapes, told apart by the value of ``tag``."""

    options: tuple[Obj, ...]
    tag: str = "kind"
    name: str | None = None

    def check(self, value: Any, path: str, ctx: Mapping[str, int]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ProtocolError(f"{path} must be an object; got {short(value)}")
        tags = []
        for option in self.options:
            spec = option.fields[self.tag]
            try:
                spec.check(value.get(self.tag), "", ctx)
            except ProtocolError:
                tags.append(spec.ts())
                continue
            return option.check(value, path, ctx)
        raise ProtocolError(
            f"{path}.{self.tag} must be one of {' | '.join(tags)}; got {short(value.get(self.tag))}"
        )

    def ts(self) -> str:
        return self.name or " | ".join(o.ts() for o in self.options)


# --------------------------------------------------------------------------- shapes
COLUMN_META = Obj(
    {"name": Str(), "kind": Enum(COLUMN_KINDS), "role": Enum(COLUMN_ROLES)},
    name="ColumnMeta",
    doc="One displayed column, as listed in the `columns` trait.",
    docs={"role": 'Pseudo columns: "row" (row id) and "weight" (current weight).'},
)
CLASS_INFO = Obj(
    {
        "value": Str(),
        "count": Int(0),
        "weight_sum": Number(),
        "share": Number(),
        "effective_share": Number(),
        "filter": Str(),
    },
    name="ClassInfo",
    doc="One class of the label column, as listed in the `classes` trait.",
    docs={"filter": "The filter text selecting this class (built by the kernel, quoted safely)."},
)
SUMMARY = Obj(
    {"rows": Int(0), "included": Int(0), "weight_sum": Number(), "ess": Number()},
    name="Summary",
    doc="Rows, included rows (weight > 0), weight sum and effective sample size.",
)
HISTORY_ROW = Obj(
    {
        "revision": Int(0),
        "parent": Nullable(Int(0)),
        "created": Str(),
        "author": Str(),
        "message": Str(),
        "rows_changed": Int(0),
    },
    name="HistoryRow",
    doc="One revision, as listed in the `history` trait (newest last).",
)
RUN_HEADLINE = Obj(
    {"name": Str(), "value": Nullable(Number()), "unit": Enum(HEADLINE_UNITS)},
    name="RunHeadline",
    doc="One headline aggregate of a run (null when it has no value, e.g. no weight).",
    docs={"unit": 'How to show it: "share" as a percentage, "count" as a whole number.'},
)
RUN_INFO = Obj(
    {
        "run": Str(),
        "revision": Int(0),
        "committed": Nullable(Int(0)),
        "created": Str(),
        "kind": Str(),
        "columns": Array(Str()),
        "headline": Array(RUN_HEADLINE),
    },
    name="RunInfo",
    doc="One run (collect_metrics, find_label_issues), as listed in the `runs` trait.",
    docs={
        "revision": "The table revision the run was computed at.",
        "committed": "The revision that added its columns (null for old stores).",
        "kind": 'What wrote it: "metrics", "label_issues", or a name a user gave.',
    },
)
SUGGESTION = Obj(
    {
        "key": Str(),
        "kind": Enum(SUGGESTION_KINDS),
        "run": Nullable(Str()),
        "title": Str(),
        "count": Int(0),
        "filter": Str(),
        "sort_by": Nullable(Str()),
        "ascending": Bool(),
        "actions": Array(Enum(SUGGESTION_ACTIONS)),
        "detail": Str(),
    },
    name="Suggestion",
    doc="One line of the suggestions panel (weightwidget.view.suggestions).",
    docs={
        "key": 'Names the line across revisions: kind or kind:run ("label_issues:r3").',
        "count": "Rows `filter` matches at the reply's revision.",
        "filter": "The filter showing exactly those rows (built and quoted by the kernel).",
        "sort_by": "The sort showing the most pressing rows first (null: dataset order).",
    },
)
FILTER_ERROR = Obj(
    {"text": Str(), "message": Str(), "position": Int(0)},
    name="FilterErrorInfo",
    doc="A filter typed in the page that the kernel refused, with the position of the problem.",
)


@dataclass(frozen=True)
class Trait:
    """A synced trait: its shape, who sets it, and what it means."""

    spec: Spec
    owner: str  # "page": the page may set it; "kernel": only the kernel does
    doc: str


TRAITS: dict[str, Trait] = {
    "filter": Trait(Str(MAX_FILTER), "page", "The filter text; '' shows every row."),
    "sort_by": Trait(Nullable(Str(1000)), "page", "Sort column, or null for dataset order."),
    "sort_ascending": Trait(Bool(), "page", "Sort direction."),
    "selected": Trait(
        Array(Int(0, "last_row"), MAX_SELECTED),
        "page",
        "Selected row ids (sorted, unique; only rows the filter shows).",
    ),
    "select_all": Trait(Bool(), "page", "Every row the filter matches is selected."),
    "matched": Trait(Int(0), "kernel", "Rows the filter matches."),
    "revision": Trait(Int(0), "kernel", "The table's revision."),
    "view": Trait(Int(0), "kernel", "Bumped whenever the rows on screen must be fetched again."),
    "n_rows": Trait(Int(0), "kernel", "Rows in the table."),
    "label": Trait(Str(), "kernel", "The label column's name."),
    "columns": Trait(Array(COLUMN_META), "kernel", "Displayed columns."),
    "classes": Trait(Array(CLASS_INFO), "kernel", "Per class counts and shares."),
    "summary": Trait(SUMMARY, "kernel", "Rows, included, weight sum, effective sample size."),
    "history": Trait(Array(HISTORY_ROW), "kernel", "The newest revisions."),
    "runs": Trait(
        Array(RUN_INFO, MAX_RUNS), "kernel", "The newest runs, oldest first (table.runs())."
    ),
    "can_undo": Trait(Bool(), "kernel", "Whether there is an edit to undo."),
    "can_redo": Trait(Bool(), "kernel", "Whether there is an undone edit to redo."),
    "filter_error": Trait(
        Nullable(FILTER_ERROR), "kernel", "The last refused filter from the page, or null."
    ),
    "error": Trait(Str(), "kernel", "The last refused state change from the page."),
}
PAGE_TRAITS = tuple(k for k, t in TRAITS.items() if t.owner == "page")
KERNEL_TRAITS = tuple(k for k, t in TRAITS.items() if t.owner == "kernel")

_WEIGHT = Number(min=0)
_ID = Int(0)

REQUESTS: dict[str, Obj] = {
    "rows": Obj(
        {"start": Int(0, "matched"), "count": Int(0, MAX_PAGE)},
        doc="Rows at view positions start..start+count (binary reply).",
    ),
    "edit": Obj({"row": Int(0, "last_row"), "value": _WEIGHT}, doc="Set one row's weight."),
    "bulk": Obj(
        {"action": Enum(BULK_ACTIONS), "target": Enum(TARGETS), "value": _WEIGHT},
        optional=frozenset({"value"}),
        doc="A weight action on the visible selection or on every matching row.",
    ),
    "select_range": Obj(
        {"start": Int(0, "last_match"), "stop": Int(0, "last_match"), "add": Bool()},
        optional=frozenset({"add"}),
        doc="Select view positions start..stop (inclusive, either order).",
    ),
    "undo": Obj({}, doc="Undo the last edit."),
    "redo": Obj({}, doc="Redo the last undone edit."),
    "revert": Obj({"revision": Int(0, "revision")}, doc="Restore a revision's weights."),
    "ping": Obj({}, doc="Pick up revisions committed elsewhere."),
    "summaries": Obj(
        {"columns": Array(Str(1000), MAX_SUMMARY_COLUMNS)},
        doc="Column summaries over the matched rows, for the columns on screen.",
    ),
    "brush": Obj(
        {"column": Str(1000), "lo": Number(), "hi": Number(), "value": Str(1000), "clear": Bool()},
        optional=frozenset({"lo", "hi", "value", "clear"}),
        doc="Add (or replace, or with clear remove) a column's condition in the filter.",
    ),
    "suggestions": Obj({}, doc="The suggestions panel's lines, counted at the current revision."),
    "suggestion_action": Obj(
        {
            "key": Str(200),
            "action": Enum(SUGGESTION_ACTIONS),
            "target": Enum(TARGETS),
            "value": _WEIGHT,
        },
        optional=frozenset({"value"}),
        doc="A suggestion's bulk action on the rows it shows (matched) or the selection; "
        "the filter must be the suggestion's. value: the factor of scale.",
    ),
}

WIRE_COLUMN = OneOf(
    (
        Obj(
            {
                "name": Str(),
                "kind": Enum(("numeric", "bool")),
                "buffer": Int(0),
                "dtype": Enum(("float64", "uint8")),
            },
            name="WireNumeric",
        ),
        Obj(
            {"name": Str(), "kind": Const("string"), "values": Array(Nullable(Str()))},
            name="WireText",
        ),
        Obj(
            {
                "name": Str(),
                "kind": Const("image"),
                "buffer": Int(0),
                "height": Int(1),
                "width": Int(1),
                "channels": Int(1, 3),
            },
            name="WireImage",
        ),
    ),
    name="WireColumn",
)

ROWS_REPLY = Obj(
    {
        "id": _ID,
        "kind": Const("rows"),
        "view": Int(0),
        "start": Int(0),
        "count": Int(0),
        "total": Int(0),
        "ids": Int(0),
        "columns": Array(WIRE_COLUMN),
    },
    name="RowsReply",
    doc="A page of rows: JSON meta; row ids and numeric, bool and image columns in buffers.",
    docs={"ids": "Buffer index of the float64 row ids."},
)
OK_REPLY = Obj(
    {
        "id": _ID,
        "ok": Const(True),
        "revision": Int(0),
        "rows": Int(0),
        "message": Str(),
    },
    optional=frozenset({"revision", "rows", "message"}),
    name="OkReply",
    doc="A request that changed something (or a ping) succeeded.",
)
ERROR_REPLY = Obj(
    {"id": Nullable(_ID), "error": Str(MAX_ERROR)},
    name="ErrorReply",
    doc="A request was refused; `error` says why (at most a few hundred characters).",
)
HISTOGRAM = Obj(
    {
        "name": Str(),
        "kind": Const("histogram"),
        "edges": Array(Number()),
        "integer": Bool(),
        "counts": Array(Int(0)),
        "totals": Array(Int(0)),
        "missing": Int(0),
        "matched": Int(0),
        "brush": Nullable(Array(Number(), 2)),
    },
    name="HistogramSummary",
    doc="A numeric column over the matched rows: counts per bin beside all rows' totals.",
    docs={
        "edges": "Bin i holds edges[i] <= x < edges[i+1]; the last bin is closed.",
        "brush": "The range a brush added to the filter (still in it), or null.",
    },
)
VALUE_COUNT = Obj(
    {"value": Str(), "count": Int(0), "total": Int(0), "filter": Str()},
    name="ValueCount",
    docs={"filter": "The condition selecting this value (quoted by the kernel)."},
)
VALUES = Obj(
    {
        "name": Str(),
        "kind": Const("values"),
        "values": Array(VALUE_COUNT),
        "other": Int(0),
        "distinct": Int(0),
        "missing": Int(0),
        "matched": Int(0),
        "picked": Nullable(Str()),
    },
    name="ValuesSummary",
    doc="A text, bool or label column over the matched rows: its top values.",
    docs={"picked": "The value a click added to the filter (still in it), or null."},
)
COLUMN_SUMMARY = OneOf((HISTOGRAM, VALUES), name="ColumnSummary")
SUMMARIES_REPLY = Obj(
    {"id": _ID, "kind": Const("summaries"), "view": Int(0), "summaries": Array(COLUMN_SUMMARY)},
    name="SummariesReply",
    doc="Summaries of the asked columns (images and unknown names are left out).",
)
BRUSH_REPLY = Obj(
    {"id": _ID, "ok": Const(True), "filter": Str(), "matched": Int(0)},
    name="BrushReply",
    doc="The filter the kernel set (shown in the filter box) and how many rows it matches.",
)
SUGGESTIONS_REPLY = Obj(
    {"id": _ID, "kind": Const("suggestions"), "revision": Int(0), "items": Array(SUGGESTION)},
    name="SuggestionsReply",
    doc="The suggestions panel's lines at `revision`.",
)
_SHAPED = {
    "rows": ROWS_REPLY,
    "summaries": SUMMARIES_REPLY,
    "brush": BRUSH_REPLY,
    "suggestions": SUGGESTIONS_REPLY,
}
REPLIES: dict[str, Obj] = {
    **_SHAPED,
    **{kind: OK_REPLY for kind in REQUESTS if kind not in _SHAPED},
}


# --------------------------------------------------------------------------- checks
def check_request(content: Any, ctx: Mapping[str, int]) -> tuple[int, str, dict[str, Any]]:
    """Return ``(id, kind, fields)`` of a request from the page, or raise ProtocolError.

    ``ctx`` holds the bounds named by the specs: ``last_row``, ``matched``,
    ``last_match``, ``revision``.
    """
    if not isinstance(content, dict):
        raise ProtocolError(f"a request must be an object; got {type(content).__name__}")
    rid = content.get("id")
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= MAX_SAFE_INT:
        raise ProtocolError(f"id must be an integer; got {short(rid)}")
    kind = content.get("kind")
    spec = REQUESTS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ProtocolError(f"unknown kind {short(kind, 60)}; expected one of {sorted(REQUESTS)}")
    body = {k: v for k, v in content.items() if k not in ("id", "kind")}
    return rid, kind, spec.check(body, "", ctx)


def check_state(state: Any, ctx: Mapping[str, int]) -> tuple[dict[str, Any], list[str]]:
    """Split a ``set_state`` from the page into checked page-owned values and refusals.

    Returns
    -------
    values : dict
        Page-owned traits with valid values (normalised).
    errors : list of str
        One message per refused key: a trait the page does not own, an unknown
        key, or a value of the wrong shape.
    """
    if not isinstance(state, dict):
        return {}, [f"a state change must be an object; got {type(state).__name__}"]
    values: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in state.items():
        trait = TRAITS.get(key) if isinstance(key, str) else None
        if trait is None or trait.owner != "page":
            errors.append(
                f"the page cannot set {short(key, 60)}; it may set {', '.join(PAGE_TRAITS)}"
            )
            continue
        try:
            values[key] = trait.spec.check(value, key, ctx)
        except ProtocolError as e:
            errors.append(str(e))
    return values, errors


def check_reply(kind: str, content: Any, buffers: Sequence[Any] = ()) -> dict[str, Any]:
    """Check a reply the kernel sends to a ``kind`` request (used by the tests)."""
    if isinstance(content, dict) and "error" in content:
        return ERROR_REPLY.check(content, "reply", {})
    out = REPLIES[kind].check(content, "reply", {})
    if kind == "rows":
        used = [out["ids"], *(c["buffer"] for c in out["columns"] if "buffer" in c)]
        if any(i >= len(buffers) for i in used):
            raise ProtocolError(f"reply refers to buffer {max(used)} of {len(buffers)}")
    return out


def check_trait(name: str, value: Any, ctx: Mapping[str, int]) -> Any:
    """Check one trait's value against its documented shape (any owner)."""
    return TRAITS[name].spec.check(value, name, ctx)


# --------------------------------------------------------------------------- examples
EXAMPLES: dict[str, Any] = {
    "context": {"last_row": 999, "matched": 1000, "last_match": 999, "revision": 3},
    "traits": {
        "filter": "label == 2 and loss > 1",
        "sort_by": "loss",
        "sort_ascending": False,
        "selected": [3, 17],
        "select_all": False,
        "matched": 1000,
        "revision": 3,
        "view": 7,
        "n_rows": 1000,
        "label": "label",
        "columns": [
            {"name": "row", "kind": "numeric", "role": "row"},
            {"name": "label", "kind": "numeric", "role": "label"},
            {"name": "weight", "kind": "numeric", "role": "weight"},
            {"name": "loss", "kind": "numeric", "role": "data"},
            {"name": "caption", "kind": "string", "role": "data"},
        ],
        "classes": [
            {
                "value": "2",
                "count": 150,
                "weight_sum": 150.0,
                "share": 0.15,
                "effective_share": 0.15,
                "filter": "label == 2",
            }
        ],
        "summary": {"rows": 1000, "included": 998, "weight_sum": 998.0, "ess": 998.0},
        "history": [
            {
                "revision": 3,
                "parent": 2,
                "created": "2026-01-01T12:00:00+00:00",
                "author": "ada",
                "message": "set weight of row 5 to 0",
                "rows_changed": 1,
            }
        ],
        "runs": [
            {
                "run": "r3",
                "revision": 2,
                "committed": 3,
                "created": "2026-01-01T12:00:00+00:00",
                "kind": "label_issues",
                "columns": ["r3_label_issue", "r3_label_quality", "r3_suggested_label"],
                "headline": [
                    {"name": "flagged", "value": 41, "unit": "count"},
                    {"name": "fraction", "value": 0.041, "unit": "share"},
                ],
            }
        ],
        "can_undo": True,
        "can_redo": False,
        "filter_error": {"text": "lable == 1", "message": "unknown column 'lable'", "position": 0},
        "error": "",
    },
    "requests": [
        {"id": 1, "kind": "rows", "start": 0, "count": 100},
        {"id": 2, "kind": "edit", "row": 5, "value": 0.5},
        {"id": 3, "kind": "bulk", "action": "set", "target": "selection", "value": 2},
        {"id": 4, "kind": "bulk", "action": "exclude", "target": "matched"},
        {"id": 5, "kind": "select_range", "start": 10, "stop": 3, "add": True},
        {"id": 6, "kind": "undo"},
        {"id": 7, "kind": "redo"},
        {"id": 8, "kind": "revert", "revision": 1},
        {"id": 9, "kind": "ping"},
        {"id": 10, "kind": "summaries", "columns": ["loss", "caption"]},
        {"id": 11, "kind": "brush", "column": "loss", "lo": 1.2, "hi": 2.7},
        {"id": 12, "kind": "brush", "column": "caption", "value": "dog"},
        {"id": 13, "kind": "brush", "column": "loss", "clear": True},
        {"id": 14, "kind": "suggestions"},
        {
            "id": 15,
            "kind": "suggestion_action",
            "key": "label_issues:r3",
            "action": "scale",
            "target": "matched",
            "value": 0.5,
        },
        {
            "id": 16,
            "kind": "suggestion_action",
            "key": "relabels:r3",
            "action": "relabel",
            "target": "selection",
        },
    ],
    "replies": {
        "rows": {
            "content": {
                "id": 1,
                "kind": "rows",
                "view": 7,
                "start": 0,
                "count": 2,
                "total": 1000,
                "ids": 0,
                "columns": [
                    {"name": "row", "kind": "numeric", "buffer": 0, "dtype": "float64"},
                    {"name": "weight", "kind": "numeric", "buffer": 1, "dtype": "float64"},
                    {"name": "flagged", "kind": "bool", "buffer": 2, "dtype": "uint8"},
                    {"name": "caption", "kind": "string", "values": ["<b>a</b>", None]},
                    {
                        "name": "image",
                        "kind": "image",
                        "buffer": 3,
                        "height": 2,
                        "width": 2,
                        "channels": 1,
                    },
                ],
            },
            # buffers as little-endian bytes, written as lists of byte values
            "buffers": [
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 240, 63],  # float64 [0, 1]
                [0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0],  # float64 [2, 0]
                [1, 0],  # uint8 [true, false]
                [0, 255, 255, 0, 9, 9, 9, 9],  # two 2x2 grey thumbnails
            ],
        },
        "edit": {
            "content": {
                "id": 2,
                "ok": True,
                "revision": 4,
                "rows": 1,
                "message": "r4: set weight of row 5 to 0.5",
            },
            "buffers": [],
        },
        "ping": {"content": {"id": 9, "ok": True, "revision": 4}, "buffers": []},
        "summaries": {
            "content": {
                "id": 10,
                "kind": "summaries",
                "view": 7,
                "summaries": [
                    {
                        "name": "loss",
                        "kind": "histogram",
                        "edges": [0, 1, 2, 3],
                        "integer": False,
                        "counts": [10, 5, 0],
                        "totals": [500, 300, 150],
                        "missing": 0,
                        "matched": 15,
                        "brush": [1, 3],
                    },
                    {
                        "name": "caption",
                        "kind": "values",
                        "values": [
                            {
                                "value": "dog",
                                "count": 9,
                                "total": 600,
                                "filter": 'caption == "dog"',
                            },
                            {
                                "value": "cat",
                                "count": 6,
                                "total": 350,
                                "filter": 'caption == "cat"',
                            },
                        ],
                        "other": 0,
                        "distinct": 2,
                        "missing": 0,
                        "matched": 15,
                        "picked": None,
                    },
                ],
            },
            "buffers": [],
        },
        "brush": {
            "content": {
                "id": 11,
                "ok": True,
                "filter": "label == 2 and 1 <= loss < 3",
                "matched": 15,
            },
            "buffers": [],
        },
        "suggestions": {
            "content": {
                "id": 14,
                "kind": "suggestions",
                "revision": 4,
                "items": [
                    {
                        "key": "label_issues:r3",
                        "kind": "label_issues",
                        "run": "r3",
                        "title": "label issues",
                        "count": 41,
                        "filter": "r3_label_issue and weight > 0",
                        "sort_by": "r3_label_quality",
                        "ascending": True,
                        "actions": ["exclude", "scale", "relabel"],
                        "detail": "Rows run r3 flagged as likely mislabelled, still included.",
                    },
                    {
                        "key": "excluded",
                        "kind": "excluded",
                        "run": None,
                        "title": "excluded rows",
                        "count": 2,
                        "filter": "weight == 0",
                        "sort_by": None,
                        "ascending": True,
                        "actions": ["include"],
                        "detail": "Rows with weight 0: never sampled, left out of training.",
                    },
                ],
            },
            "buffers": [],
        },
        "error": {
            "content": {"id": 8, "error": "revision must be in [0, 3]; got 9"},
            "buffers": [],
        },
    },
}


# --------------------------------------------------------------------------- TypeScript
_EXAMPLES_TS = """
/** One reply as the kernel sends it: JSON content and binary buffers (as bytes). */
export interface ReplyExample<T> {
  content: T;
  buffers: number[][];
}

export interface Examples {
  context: { last_row: number; matched: number; last_match: number; revision: number };
  traits: Traits;
  requests: (Request & { id: number })[];
  replies: { [K in keyof Replies]?: ReplyExample<Replies[K]> } & {
    error: ReplyExample<ErrorReply>;
  };
}

/** Examples both sides are tested against (tests/test_protocol.py, js/tests). */
"""


def _doc(text: str, indent: str = "") -> str:
    return f"{indent}/** {text} */\n" if text else ""


def _named(specs: list[Spec]) -> list[Obj | OneOf]:
    """Named shapes reachable from ``specs``, dependencies first."""
    out: list[Obj | OneOf] = []

    def visit(spec: Spec) -> None:
        if isinstance(spec, (Nullable,)):
            visit(spec.inner)
        elif isinstance(spec, Array):
            visit(spec.item)
        elif isinstance(spec, OneOf):
            for o in spec.options:
                visit(o)
            if spec.name and spec not in out:
                out.append(spec)
        elif isinstance(spec, Obj):
            for s in spec.fields.values():
                visit(s)
            if spec.name and spec not in out:
                out.append(spec)

    for s in specs:
        visit(s)
    return out


def typescript() -> str:
    """The TypeScript module ``js/protocol.gen.ts`` (types, trait owners, examples)."""
    lines = [
        "// GENERATED by scripts/gen_protocol.py from weightwidget/_protocol.py: do not edit.",
        "// The page-kernel contract: synced traits, requests and replies.",
        "",
    ]
    specs = [t.spec for t in TRAITS.values()] + list(REQUESTS.values())
    named = _named([*specs, *REPLIES.values(), ERROR_REPLY])
    for spec in named:
        if isinstance(spec, OneOf):
            lines.append(f"export type {spec.name} = {' | '.join(o.ts() for o in spec.options)};")
            lines.append("")
            continue
        lines.append(_doc(spec.doc).rstrip("\n")) if spec.doc else None
        lines.append(f"export interface {spec.name} {{")
        for key, s in spec.fields.items():
            if key in spec.docs:
                lines.append(_doc(spec.docs[key], "  ").rstrip("\n"))
            opt = "?" if key in spec.optional else ""
            lines.append(f"  {key}{opt}: {s.ts()};")
        lines.append("}")
        lines.append("")
    lines.append("/** The synced traits (mirroring weightwidget/widget.py). */")
    lines.append("export interface Traits {")
    for name, trait in TRAITS.items():
        lines.append(f"  /** {trait.doc} ({trait.owner}) */")
        lines.append(f"  {name}: {trait.spec.ts()};")
    lines.append("}")
    lines.append("")
    lines.append("/** Traits the page may set; the kernel refuses every other key. */")
    lines.append(f"export const PAGE_TRAITS = {json.dumps(list(PAGE_TRAITS))} as const;")
    lines.append("export type PageTrait = (typeof PAGE_TRAITS)[number];")
    lines.append("")
    lines.append(f"export type BulkAction = {Enum(BULK_ACTIONS).ts()};")
    lines.append(f"export type Target = {Enum(TARGETS).ts()};")
    lines.append(f"export type SuggestionKind = {Enum(SUGGESTION_KINDS).ts()};")
    lines.append(f"export type SuggestionAction = {Enum(SUGGESTION_ACTIONS).ts()};")
    lines.append("")
    lines.append("/** Requests the page sends (rpc.ts adds the id). */")
    lines.append("export type Request =")
    for kind, spec in REQUESTS.items():
        body = spec.body()
        inner = f'kind: "{kind}"' + ("" if body == "{  }" else f"; {body[2:-2]}")
        lines.append(f"  | {{ {inner} }}")
    lines[-1] += ";"
    lines.append('export type RequestKind = Request["kind"];')
    lines.append("")
    lines.append("/** The reply to each kind of request (or an ErrorReply). */")
    lines.append("export interface Replies {")
    for kind, spec in REPLIES.items():
        lines.append(f"  {kind}: {spec.ts()};")
    lines.append("}")
    lines.append("")
    lines.append("/** Limits the kernel enforces. */")
    limits = {
        "MAX_PAGE": MAX_PAGE,
        "MAX_FILTER": MAX_FILTER,
        "MAX_SELECTED": MAX_SELECTED,
        "MAX_ERROR": MAX_ERROR,
    }
    lines.append(f"export const LIMITS = {json.dumps(limits)} as const;")
    lines.append("")
    lines.append(_EXAMPLES_TS.strip("\n"))
    lines.append(f"export const EXAMPLES: Examples = {json.dumps(EXAMPLES, indent=2)};")
    lines.append("")
    return "\n".join(lines)
