"""Labels as data: unlabelled rows, label edits, classes added by revisions.

A table's labels at a revision are *store codes*: int32, one per row, ``-1`` for
an unlabelled row. Revision 0's codes index the sorted classes of the label
column as ingested (:func:`weightwidget._columns.label_encoding`). A label edit
that brings a new class (``set_labels(..., allow_new_classes=True)``) gives it
the next free store code and records it in its revision header
(``"classes_added": {"codes": [...], "values": [...]}``); opening the store
replays those headers along the revision's parent chain. Store codes never
change meaning, so every revision's codes stay readable.

What users see is sorted: :attr:`WeightTable.classes` is the sorted list of
store classes and :attr:`WeightTable.label_codes` indexes it. When a class is
added, classes after it move up by one in ``label_codes`` (per-class arrays are
ordered by ``classes`` at the revision they were computed at). A class stays in
the list once added, even when no row holds it any more (after an undo, say),
so per-class arrays keep their length across edits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _columns
from .errors import StoreCorruptedError

__all__ = ["LabelView", "class_values", "codes_for", "derived_column", "replay_added", "view"]


@dataclass(frozen=True)
class LabelView:
    """The labels of one state, as users see them.

    Attributes
    ----------
    store_classes : ndarray
        Classes by store code: revision 0's sorted classes, then added ones.
    classes : ndarray
        ``store_classes`` sorted (what ``WeightTable.classes`` returns).
    remap : ndarray or None
        Sorted index of each store code, with ``-1`` appended for code ``-1``;
        None when store codes are already sorted indices.
    codes : ndarray
        Read-only index into ``classes`` per row, ``-1`` for unlabelled rows.
    """

    store_classes: np.ndarray
    classes: np.ndarray
    remap: np.ndarray | None
    codes: np.ndarray

    @property
    def n_unlabelled(self) -> int:
        """Rows without a label."""
        return int(np.count_nonzero(self.codes < 0))


def class_values(base: np.ndarray, added: Sequence[Any]) -> np.ndarray:
    """Classes by store code: ``base`` (revision 0's classes) then ``added``."""
    if not len(added):
        return base
    if base.dtype.kind in "iu":
        return np.concatenate([base.astype(np.int64), np.asarray(added, dtype=np.int64)])
    if base.dtype.kind == "f":
        return np.concatenate([base, np.asarray(added, dtype=np.float64)])
    if base.dtype.kind == "b":
        return np.concatenate([base, np.asarray(added, dtype=bool)])
    out = np.empty(len(base) + len(added), dtype=object)
    out[: len(base)] = base
    out[len(base) :] = list(added)
    return out


def _order(values: np.ndarray) -> np.ndarray:
    """Sort order of class values: numbers numerically, text as Arrow sorts it."""
    if values.dtype.kind in "iufb":
        return np.argsort(values, kind="stable")
    import pyarrow as pa

    return _columns._sort_indices(pa.array(list(values), type=pa.string()))


def view(base: _columns.Labels, added: Sequence[Any], stored: np.ndarray | None) -> LabelView:
    """The :class:`LabelView` of labels with classes ``added`` since revision 0.

    ``base`` is revision 0's encoding; ``stored`` the state's store codes (None:
    no label was ever edited).
    """
    store_classes = class_values(base.classes, added)
    codes = base.codes if stored is None else stored
    if len(added):
        order = _order(store_classes)
        remap = np.empty(len(store_classes) + 1, dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        remap[-1] = -1  # store code -1 (unlabelled) indexes the last slot
        classes = store_classes[order]
        codes = remap[codes]
    else:
        remap, classes = None, store_classes
        codes = codes.view()
    codes.flags.writeable = False
    return LabelView(store_classes, classes, remap, codes)


def derived_column(v: LabelView, base_column: Any) -> Any:
    """The label column of a state whose labels were edited, typed like the base column.

    Numbers stay numbers (float with NaN where a row is unlabelled), text is a
    Categorical over the sorted classes (code -1 where unlabelled).
    """
    codes = v.codes
    missing = bool((codes < 0).any())
    if isinstance(base_column, pd.Categorical) or v.classes.dtype == object:
        import pyarrow as pa

        strings = pa.array([str(c) for c in v.classes], type=pa.string())
        return _columns.make_categorical(np.asarray(codes), strings)
    if missing:
        table = np.append(v.classes.astype(np.float64), np.nan)
        return table[codes]  # code -1 takes the appended NaN
    return v.classes[codes]


def codes_for(
    values: Any,
    store_classes: np.ndarray,
    *,
    label: str,
    allow_new_classes: bool,
) -> tuple[np.ndarray, list[Any]]:
    """Store codes of label ``values`` (a 1-D array), and the new classes they bring.

    Missing values (None, NaN, ``pd.NA``) get code -1. New classes get the next
    free store codes, in sorted order.

    Raises
    ------
    TypeError
        A value of the wrong kind for the label column (text for a numeric one...).
    ValueError
        A value that is not a class, unless ``allow_new_classes``; a non-whole
        number for integer classes; an infinite number.
    """
    arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if arr.ndim != 1:
        raise ValueError(f"label values must be one-dimensional; got shape {arr.shape}")
    missing = np.asarray(pd.isna(arr), dtype=bool)
    given = arr[~missing] if missing.any() else arr
    out = np.full(arr.shape[0], -1, dtype=np.int32)
    if not given.size:
        return out, []
    given = _typed(given, store_classes.dtype.kind, label)
    found = pd.Index(store_classes).get_indexer(given) if len(store_classes) else None
    if found is None:
        found = np.full(given.size, -1, dtype=np.int64)
    unknown = found < 0
    new: list[Any] = []
    if unknown.any():
        fresh = pd.unique(given[unknown])
        fresh = fresh[_order(np.asarray(fresh))]
        if not allow_new_classes:
            shown = ", ".join(repr(_plain(v)) for v in fresh[:5])
            known = ", ".join(repr(_plain(v)) for v in store_classes[:10])
            more = f", ... ({len(store_classes)} in all)" if len(store_classes) > 10 else ""
            raise ValueError(
                f"{'label' if len(fresh) == 1 else 'labels'} {shown}"
                f"{' and more' if len(fresh) > 5 else ''} "
                f"{'is not a class' if len(fresh) == 1 else 'are not classes'} of this table "
                f"(classes: {known or 'none yet'}{more}); pass allow_new_classes=True to add "
                f"{'it' if len(fresh) == 1 else 'them'}"
            )
        new = [_plain(v) for v in fresh]
        extended = class_values(store_classes, new)
        found = pd.Index(extended).get_indexer(given)
    if missing.any():
        out[~missing] = found
    else:
        out[:] = found
    return out, new


def _typed(given: np.ndarray, kind: str, label: str) -> np.ndarray:
    """``given`` label values as the label column's type, refusing the wrong kind.

    Types are checked with pandas' C-level inference; Python only walks the values
    to name a bad one in the error.
    """
    inferred = pd.api.types.infer_dtype(given, skipna=False) if given.dtype == object else ""
    if kind == "O":
        if given.dtype.kind in "US" or inferred == "string":
            return given.astype(object)
        bad = next(v for v in given if not isinstance(v, str))
        raise TypeError(
            f"label column {label!r} holds text; got the label {bad!r} "
            f"({type(bad).__name__}); pass it as a string, e.g. {str(bad)!r}"
        )
    if kind == "b":
        if given.dtype == bool or inferred == "boolean":
            return given.astype(bool)
        raise TypeError(f"label column {label!r} holds booleans; got {given[:3].tolist()!r}")
    numeric = given.dtype.kind in "iuf" or inferred in (
        "integer",
        "floating",
        "mixed-integer-float",
    )
    if not numeric:
        bad = next(
            (
                v
                for v in given
                if isinstance(v, (bool, np.bool_))
                or not isinstance(v, (int, float, np.integer, np.floating))
            ),
            given[0],
        )
        raise TypeError(
            f"label column {label!r} holds numbers; got the label {bad!r} ({type(bad).__name__})"
        )
    if kind in "iu" and (given.dtype.kind in "iu" or inferred == "integer"):
        try:
            return given.astype(np.int64)  # exact, also for Python ints beyond 2**53
        except OverflowError as exc:
            raise ValueError(f"label column {label!r}: a label is beyond 64 bits") from exc
    num = given.astype(np.float64)
    if not np.isfinite(num).all():
        raise ValueError(
            f"label column {label!r}: labels must be finite numbers; got "
            f"{num[~np.isfinite(num)][0]} (None or NaN makes a row unlabelled)"
        )
    if kind in "iu":
        whole = np.mod(num, 1) == 0
        if not whole.all():
            raise ValueError(
                f"label column {label!r} holds whole-number classes; got {float(num[~whole][0])!r}"
            )
        return num.astype(np.int64)
    return num


def _plain(value: Any) -> Any:
    """A class value as a plain Python scalar (for messages and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def header_entry(first_code: int, values: Sequence[Any]) -> dict[str, Any]:
    """The ``classes_added`` entry of a revision header."""
    plain = [_plain(v) for v in values]
    json.dumps(plain)  # a value JSON cannot hold is a bug above, not data
    return {"codes": list(range(first_code, first_code + len(plain))), "values": plain}


def replay_added(
    headers: Sequence[dict[str, Any]], first_code: int, *, where: str
) -> tuple[Any, ...]:
    """The classes the ``headers`` (oldest first) added, checked against their codes."""
    added: list[Any] = []
    for header in headers:
        entry = header.get("classes_added")
        if not entry:
            continue
        try:
            codes = [int(c) for c in entry["codes"]]
            values = list(entry["values"])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreCorruptedError(
                f"{where}: revision {header.get('revision')} has an unreadable classes_added",
                path=where,
            ) from exc
        expected = list(range(first_code + len(added), first_code + len(added) + len(values)))
        if codes != expected or len(codes) != len(values):
            raise StoreCorruptedError(
                f"{where}: revision {header.get('revision')} adds classes with codes {codes}, "
                f"expected {expected}",
                path=where,
            )
        added.extend(values)
    return tuple(added)
