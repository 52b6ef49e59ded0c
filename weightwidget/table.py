"""``WeightTable``: a dataset's columns and its per-sample weights, with history.

The table is the only place weights change. Every change is one revision in a
:class:`~weightwidget.store.RevisionStore`, so another process that opens the
same store gets exactly the same weights.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _columns, query, view
from ._checks import (
    check_choice,
    check_length,
    check_weight_values,
    unknown_column_message,
)
from ._sources import torch_labels
from .balance import STRATEGIES, class_weights
from .errors import StoreExistsError, StoreMismatchError
from .store import RevisionStore

if TYPE_CHECKING:
    import matplotlib.axes

__all__ = ["WeightTable"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

RESERVED = _columns.RESERVED
IF_EXISTS = ("reuse", "overwrite", "error")
DEFAULT_STORE_DIR = ".weightwidget"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Where = Any  # str | bool mask | row ids | slice | None


class WeightTable:
    """A dataset's labels and columns with one editable weight per sample.

    Build one with :meth:`from_pandas`, :meth:`from_arrays`,
    :meth:`from_torch_dataset`, or reopen a store with :meth:`open`. Every
    sample starts at ``weight = 1.0``; weight 0 leaves a sample out of training.

    Examples
    --------
    >>> t = WeightTable.from_arrays(labels=[0, 0, 0, 1], name="toy", store="memory://toy")
    >>> t.balance("balanced")
    1
    >>> t.weights
    array([0.66666667, 0.66666667, 0.66666667, 2.        ])
    """

    def __init__(
        self,
        *,
        store: RevisionStore,
        columns: dict[str, Any],
        label: str,
        revision: int,
        weights: np.ndarray,
        author: str,
    ) -> None:
        # private: use the from_* constructors or open()
        self._store = store
        self._columns = columns
        self._base_names = list(columns)
        self._label = label
        self._revision = revision
        self._weights = weights
        self._weights.flags.writeable = False
        self._author = author
        self._subscribers: list[Callable[[WeightTable], None]] = []
        self._lock = threading.RLock()  # edits and refreshes from several threads
        self._redo: list[int] = []
        self._column_sets: set[str] = set()
        self._columns_version = 0
        self._classes: np.ndarray | None = None
        self._codes: np.ndarray | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        *,
        label: str,
        name: str | None = None,
        store: str | os.PathLike[str] | None = None,
        weights: str | None = None,
        if_exists: str = "reuse",
        author: str | None = None,
    ) -> WeightTable:
        """Build a table from a DataFrame; every other column becomes a table column.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per sample, in dataset order.
        label : str
            Name of the class-label column (ints, strings or categories).
        name : str, optional
            Name of the table; the default store is ``.weightwidget/<name>`` in the
            working directory. Without a name the data's fingerprint names it.
        store : str or path, optional
            Folder path or fsspec URL (``memory://x``, ``s3://bucket/x``) of the store.
        weights : str, optional
            A column holding starting weights (default: all 1.0).
        if_exists : {"reuse", "overwrite", "error"}, default="reuse"
            When the store exists: ``reuse`` reopens it and keeps its curated
            weights (the data must be the same), ``overwrite`` starts afresh,
            ``error`` raises.
        author : str, optional
            Recorded with each revision (default: ``$WEIGHTWIDGET_AUTHOR`` or the
            login name).

        Returns
        -------
        WeightTable

        Raises
        ------
        ValueError
            Unknown label column, missing labels, an empty frame, bad weights.
        StoreMismatchError
            The store holds different data under this name; the message says what differs.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_pandas expects a pandas DataFrame; got {type(df).__name__}")
        names = [str(c) for c in df.columns]
        if label not in names:
            raise ValueError(f"label column: {unknown_column_message(label, names)}")
        initial = None
        if weights is not None:
            if weights not in names:
                raise ValueError(f"weights column: {unknown_column_message(weights, names)}")
            initial = df[weights].to_numpy()
        columns: dict[str, Any] = {label: df[label]}
        for col in df.columns:
            key = str(col)
            if key in (label, weights):
                continue
            columns[key] = df[col]
        return cls._build(
            columns,
            label=label,
            name=name,
            store=store,
            initial=initial,
            if_exists=if_exists,
            author=author,
            source="pandas DataFrame",
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        labels: Any,
        name: str | None = None,
        store: str | os.PathLike[str] | None = None,
        weights: Any = None,
        if_exists: str = "reuse",
        author: str | None = None,
        **columns: Any,
    ) -> WeightTable:
        """Build a table from a label array and extra columns given as keywords.

        Parameters
        ----------
        labels : array-like of shape (n_samples,)
            Class labels (ints or strings).
        name, store, if_exists, author
            As in :meth:`from_pandas`.
        weights : array-like of shape (n_samples,), optional
            Starting weights (default: all 1.0).
        **columns : array-like
            Extra columns, each of length ``n_samples``: numbers, booleans,
            strings, or images (an array of shape ``(n_samples, h, w[, c])``).

        Returns
        -------
        WeightTable
        """
        data: dict[str, Any] = {"label": labels}
        for key, values in columns.items():
            data[key] = values
        return cls._build(
            data,
            label="label",
            name=name,
            store=store,
            initial=weights,
            if_exists=if_exists,
            author=author,
            source="arrays",
        )

    @classmethod
    def from_torch_dataset(
        cls,
        dataset: Any,
        *,
        name: str | None = None,
        store: str | os.PathLike[str] | None = None,
        label_fn: Callable[[Any], Any] | None = None,
        if_exists: str = "reuse",
        author: str | None = None,
        progress: bool = True,
        **columns: Any,
    ) -> WeightTable:
        """Build a table from a map-style ``torch.utils.data.Dataset``.

        Labels come from ``dataset.targets`` or ``dataset.labels`` when present
        (through ``Subset`` and ``ConcatDataset`` too); otherwise every item is
        read once, with a progress bar, and ``label_fn(item)`` (default
        ``item[1]``) gives its label.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            A map-style dataset with ``__len__`` and ``__getitem__``.
        label_fn : callable, optional
            Label of one item, e.g. ``lambda item: item["y"]``.
        progress : bool, default=True
            Show a tqdm progress bar while iterating.
        name, store, if_exists, author, **columns
            As in :meth:`from_arrays`.

        Returns
        -------
        WeightTable
        """
        labels = torch_labels(dataset, label_fn=label_fn, progress=progress)
        data: dict[str, Any] = {"label": labels, **columns}
        return cls._build(
            data,
            label="label",
            name=name,
            store=store,
            initial=None,
            if_exists=if_exists,
            author=author,
            source=f"torch dataset {type(dataset).__name__}",
        )

    @classmethod
    def open(cls, store: str | os.PathLike[str], *, author: str | None = None) -> WeightTable:
        """Reopen a persisted table, in this or any other process.

        Parameters
        ----------
        store : str or path
            The store's folder path or fsspec URL.
        author : str, optional
            Recorded with revisions made through this table.

        Returns
        -------
        WeightTable
            At the newest revision that reads back whole. A damaged file is
            reported with a :class:`~weightwidget.errors.StoreCorruptionWarning`
            naming it.
        """
        st = RevisionStore(os.fspath(store))
        meta = st.read_meta()
        parquet, tensors = st.read_base()
        columns = _columns.decode_base(parquet, tensors, meta)
        del parquet, tensors  # before the weights are read: keeps the peak down
        return cls._from_store(st, columns, meta, author)

    @classmethod
    def _from_store(
        cls, st: RevisionStore, columns: dict[str, Any], meta: dict[str, Any], author: str | None
    ) -> WeightTable:
        n = int(meta["n_rows"])
        rev, weights = st.head(n)
        table = cls(
            store=st,
            columns=columns,
            label=meta["label"],
            revision=rev,
            weights=weights,
            author=_author(author),
        )
        table._load_column_sets()
        return table

    @classmethod
    def _build(
        cls,
        data: dict[str, Any],
        *,
        label: str,
        name: str | None,
        store: Any,
        initial: Any,
        if_exists: str,
        author: str | None,
        source: str,
    ) -> WeightTable:
        check_choice(if_exists, IF_EXISTS, what="if_exists")
        columns = _columns.normalise_columns(data, label=label)
        n = len(columns[label])
        if initial is None:
            initial_w = np.ones(n)
        else:
            initial_w = np.array(check_weight_values(initial, what="starting weights"))
            check_length(initial_w, n, what="weights")
        hashes = {key: _columns.column_hash(values) for key, values in columns.items()}
        hashes["(starting weights)"] = _columns.column_hash(initial_w)
        fingerprint = hashlib.blake2b(
            "".join(f"{k}={v};" for k, v in hashes.items()).encode(), digest_size=8
        ).hexdigest()
        if name is None:
            name = f"table-{fingerprint[:12]}"
        elif not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(
                f"name must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter "
                f"or digit); got name={name!r}"
            )
        url = os.fspath(store) if store is not None else str(Path(DEFAULT_STORE_DIR) / name)
        st = RevisionStore(url)
        if st.exists():
            if if_exists == "error":
                raise StoreExistsError(
                    f"a store already exists at {st.url}; pass if_exists='reuse' to reopen "
                    "it or if_exists='overwrite' to start afresh"
                )
            if if_exists == "reuse":
                meta = st.read_meta()
                if meta.get("fingerprint") != fingerprint:
                    raise StoreMismatchError(
                        f"the store at {st.url} holds different data than given: "
                        f"{_columns.describe_mismatch(meta, columns, hashes, label)}. Pass "
                        "if_exists='overwrite' to replace it, or another name= / store="
                    )
                logger.info("reopening %s at its latest revision", st.url)
                return cls._from_store(st, columns, meta, author)
            st.destroy()
            st = RevisionStore(url)
        meta = {
            "format": "weightwidget-store",
            "name": name,
            "n_rows": n,
            "label": label,
            "columns": [
                {"name": k, "kind": query.column_kind(v), "hash": hashes[k]}
                for k, v in columns.items()
            ],
            "fingerprint": fingerprint,
            "created": time.time(),
            "source": source,
        }
        arrow_table, tensors = _columns.base_table(columns)
        classes, codes = _columns.factorize(columns[label])
        header = {
            "created": time.time(),
            "author": _author(author),
            "message": f"created from {source} ({n:,} rows, {len(classes)} classes)",
            "rows_changed": n,
            "action": "create",
        }
        files: dict[str, Any] = {
            "base/columns.parquet": functools.partial(_columns.write_parquet, arrow_table),
            **{f"base/{name}": blob for name, blob in tensors.items()},
        }
        st.create(meta, files, initial_w, header)
        del arrow_table, tensors
        _columns.release_arrow_memory()
        table = cls(
            store=st,
            columns=columns,
            label=label,
            revision=0,
            weights=initial_w,
            author=_author(author),
        )
        table._classes, table._codes = classes, codes
        return table

    # ------------------------------------------------------------------ properties
    @property
    def weights(self) -> np.ndarray:
        """Current weights: read-only float64 array in dataset order."""
        return self._weights

    @property
    def revision(self) -> int:
        """The revision these weights belong to."""
        return self._revision

    @property
    def name(self) -> str:
        """The table's name."""
        return str(self._store.meta.get("name", ""))

    @property
    def store_url(self) -> str:
        """Where the store lives (pass it to :meth:`open` in another process)."""
        return self._store.url

    @property
    def label(self) -> str:
        """Name of the label column."""
        return self._label

    @property
    def n_rows(self) -> int:
        """Number of samples."""
        return len(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    @property
    def columns(self) -> list[str]:
        """Data column names in display order (label first); ``weight`` is not included."""
        return list(self._columns)

    def column(self, name: str) -> Any:
        """Values of one column.

        Returns a 1-D ndarray for numbers and booleans, a
        :class:`pandas.Categorical` for text, an ndarray of shape ``(n, h, w[, c])``
        for images. ``"weight"`` and ``"row"`` give the current weights and row ids.
        """
        if name == "weight":
            return self._weights
        if name == "row":
            return self._rows()
        if name not in self._columns:
            raise KeyError(unknown_column_message(name, [*self._columns, *RESERVED]))
        return self._columns[name]

    def column_kind(self, name: str) -> str:
        """``"numeric"``, ``"bool"``, ``"string"`` or ``"image"``."""
        return query.column_kind(self.column(name))

    @property
    def labels(self) -> np.ndarray:
        """Class label of each sample, in dataset order."""
        return np.asarray(_columns.label_values(self._columns[self._label]))

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct class labels."""
        self._factorize_labels()
        assert self._classes is not None
        return self._classes

    @property
    def label_codes(self) -> np.ndarray:
        """Index into :attr:`classes` of each sample's label."""
        self._factorize_labels()
        assert self._codes is not None
        return self._codes

    @property
    def df(self) -> pd.DataFrame:
        """A DataFrame of the columns plus the current ``weight`` (index: row id)."""
        data: dict[str, Any] = {}
        for key, values in self._columns.items():
            data[key] = list(values) if query.column_kind(values) == "image" else values
        data["weight"] = self._weights
        return pd.DataFrame(data, index=pd.RangeIndex(len(self), name="row"))

    def __repr__(self) -> str:
        return (
            f"<WeightTable {self.name!r}: {len(self):,} rows, {len(self.classes)} classes, "
            f"revision {self._revision}, store {self._store.url}>"
        )

    # ------------------------------------------------------------------ selection
    def mask(self, where: Where = None) -> np.ndarray:
        """Boolean mask of the rows ``where`` selects.

        Parameters
        ----------
        where : str, array-like of bool, array-like of int, slice or None
            A filter string (``"label == 3 and loss > 2"``), a boolean mask, row
            ids, a slice of row positions, or None for every row.
        """
        if isinstance(where, str):
            return self._filter_mask(where)
        ids = self._resolve(where)[0]
        out = np.zeros(len(self), dtype=bool)
        out[ids] = True
        return out

    def select(self, where: Where = None) -> np.ndarray:
        """Sorted row ids of the rows ``where`` selects (see :meth:`mask`)."""
        ids = self._resolve(where)[0]
        return ids if isinstance(where, str) or where is None else np.unique(ids)

    def count(self, where: Where = None) -> int:
        """Number of rows ``where`` selects."""
        return len(self._resolve(where)[0])

    def sort_order(self, by: str, *, ascending: bool = True) -> np.ndarray:
        """Row ids ordered by a column: stable, ties by row id, missing values last.

        Cached per column, direction and table version (see :mod:`weightwidget.view`).
        """
        return view.sort_order(self, by, ascending=ascending)

    # ------------------------------------------------------------------ edits
    def set_weights(self, where: Where, value: Any, message: str | None = None) -> int:
        """Set the weight of the selected rows; one new revision.

        Parameters
        ----------
        where : str, array-like of bool, array-like of int, slice or None
            Which rows (see :meth:`mask`); None means every row.
        value : float or array-like of float
            One value for all selected rows, or one per selected row (in row-id
            order for filters, masks and slices; in the given order for row ids).
        message : str, optional
            Revision message; generated when omitted, e.g.
            ``"set weight=0 where label == 3 (412 rows)"``.

        Returns
        -------
        int
            The new revision.

        Raises
        ------
        ValueError
            NaN, infinite or negative values; a value array of the wrong length;
            a malformed filter; row ids out of range.
        """
        per_row = np.ndim(value) > 0
        values = check_weight_values(value, what="weight values")
        resolved = self._resolve(where)  # validate before taking the lock

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            ids, desc = self._resolve_again(where, resolved)
            if per_row:
                check_length(
                    values, len(ids), what="value", hint=f" (one per selected row: {desc})"
                )
                new = values
            else:
                new = np.full(len(ids), float(values))
            shown = "per-row values" if per_row else _fmt(float(values))
            return ids, new, f"set weight={shown} {desc} ({len(ids):,} rows)"

        return self._commit(op, message, action="set")

    def scale_weights(self, where: Where, factor: Any, message: str | None = None) -> int:
        """Multiply the weight of the selected rows by ``factor``; one new revision.

        Parameters
        ----------
        where : str, array-like of bool, array-like of int, slice or None
            Which rows (see :meth:`mask`).
        factor : float or array-like of float
            Non-negative, finite; a scalar or one per selected row.
        message : str, optional
            Revision message (generated when omitted).

        Returns
        -------
        int
            The new revision.
        """
        per_row = np.ndim(factor) > 0
        factors = check_weight_values(factor, what="factor")
        resolved = self._resolve(where)

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            ids, desc = self._resolve_again(where, resolved)
            if per_row:
                check_length(
                    factors, len(ids), what="factor", hint=f" (one per selected row: {desc})"
                )
            with np.errstate(over="ignore", invalid="ignore"):  # reported just below
                new = current[ids] * factors
            check_weight_values(new, what="scaled weights")
            shown = "per-row factors" if per_row else _fmt(float(factors))
            return ids, new, f"multiply weight by {shown} {desc} ({len(ids):,} rows)"

        return self._commit(op, message, action="scale")

    def balance(
        self,
        strategy: str = "inverse_frequency",
        where: Where = None,
        *,
        beta: float = 0.999,
        message: str | None = None,
    ) -> int:
        """Give each included sample its class's weight; one new revision.

        Class counts are taken over the included rows (weight > 0) that ``where``
        selects; those rows get the class weight of the strategy and rows at
        weight 0 stay excluded.

        Parameters
        ----------
        strategy : {"inverse_frequency", "sqrt_inverse_frequency", "effective_number", \
"balanced"}
            See :func:`weightwidget.balance.class_weights`: ``n / n_c``,
            ``sqrt(n / n_c)``, Cui et al.'s ``(1 - beta) / (1 - beta**n_c)``
            (normalised to sum to the number of classes), or scikit-learn's
            ``n / (k * n_c)``.
        where : str, array-like, slice or None, default=None
            Restrict to these rows (default: all).
        beta : float, default=0.999
            For ``effective_number``.
        message : str, optional
            Revision message (generated when omitted).

        Returns
        -------
        int
            The new revision.
        """
        check_choice(strategy, STRATEGIES, what="strategy")
        if not (0.0 <= beta < 1.0):
            raise ValueError(f"beta must be in [0, 1); got beta={beta!r}")
        resolved = self._resolve(where)
        codes = self.label_codes
        k = len(self.classes)

        def op(current: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
            if where is None:  # whole-table path: full-length arrays, fewer temporaries
                keep = current > 0  # existing zeros stay excluded
                counts = np.bincount(codes, weights=keep, minlength=k)
                if not counts.any():
                    raise ValueError(
                        "nothing to balance: every row has weight 0; include some rows first, "
                        "e.g. set_weights(None, 1)"
                    )
                new = class_weights(counts, strategy, beta=beta)[codes]
                np.multiply(new, keep, out=new)
                return (
                    None,
                    new,
                    (
                        f"balance {strategy} for all rows ({int(counts.sum()):,} rows, "
                        f"{int((counts > 0).sum())} classes)"
                    ),
                )
            ids, desc = self._resolve_again(where, resolved)
            ids = ids[current[ids] > 0]  # existing zeros stay excluded
            if len(ids) == 0:
                raise ValueError(
                    f"nothing to balance: every row {desc} has weight 0; include some rows "
                    "first, e.g. set_weights(where, 1)"
                )
            row_codes = codes[ids]
            cw = class_weights(np.bincount(row_codes, minlength=k), strategy, beta=beta)
            present = int((np.bincount(row_codes, minlength=k) > 0).sum())
            return (
                ids,
                cw[row_codes],
                (f"balance {strategy} {desc} ({len(ids):,} rows, {present} classes)"),
            )

        return self._commit(op, message, action="balance")

    def revert(self, rev: int, *, message: str | None = None) -> int:
        """Restore the weights of revision ``rev`` as a new revision.

        Returns
        -------
        int
            The new revision.
        """
        target = self.weights_at(rev)

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            ids = np.flatnonzero(current != target)
            return ids, target[ids], f"revert to revision {rev} ({len(ids):,} rows)"

        new = self._commit(op, message, action="revert", extra={"restores": int(rev)})
        return new

    def undo(self) -> int:
        """Undo the last edit: a new revision restoring the weights before it.

        Returns
        -------
        int
            The new revision.

        Raises
        ------
        ValueError
            When there is nothing left to undo.
        """
        state, header = self._edit_behind_current()
        parent = header.get("parent")
        if parent is None:
            raise ValueError("nothing to undo: the table is at its first revision")
        undone_msg = header.get("message", "")
        target = self.weights_at(int(parent))
        redo = [*self._redo, state]

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            ids = np.flatnonzero(current != target)
            return ids, target[ids], f"undo: {undone_msg}"

        rev = self._commit(
            op,
            None,
            action="undo",
            extra={"restores": int(parent), "restores_state_of": int(parent), "undoes": int(state)},
            redo=redo,
        )
        return rev

    def redo(self) -> int:
        """Redo the last undone edit (as a new revision).

        Raises
        ------
        ValueError
            When nothing was undone since the last edit.
        """
        if not self._redo:
            raise ValueError("nothing to redo")
        state = self._redo[-1]
        target = self.weights_at(state)
        msg = self._store.header(state).get("message", "")

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            ids = np.flatnonzero(current != target)
            return ids, target[ids], f"redo: {msg}"

        rev = self._commit(
            op,
            None,
            action="redo",
            extra={"restores": int(state), "restores_state_of": int(state)},
            redo=self._redo[:-1],
        )
        return rev

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has something to undo."""
        return self._edit_behind_current()[1].get("parent") is not None

    def _edit_behind_current(self) -> tuple[int, dict[str, Any]]:
        """The revision whose edit the current weights show, and its header.

        Undo and redo revisions restore an earlier state; follow them to the edit
        that state came from, so that undoing twice goes two edits back.
        """
        state = self._revision
        header = self._store.header(state)
        while header.get("action") in ("undo", "redo"):
            state = int(header["restores_state_of"])
            header = self._store.header(state)
        return state, header

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` has something to redo."""
        return bool(self._redo)

    def _commit(
        self,
        op: Callable[[np.ndarray], tuple[np.ndarray | None, np.ndarray, str]],
        message: str | None,
        *,
        action: str,
        extra: dict[str, Any] | None = None,
        redo: list[int] | None = None,
    ) -> int:
        """Apply ``op`` to the newest weights under the writer lock and write a revision.

        ``op`` runs after picking up revisions other processes committed, so two
        writers both land and neither edit is lost.
        """
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message must be a string; got {type(message).__name__}")
        t0 = time.perf_counter()
        with self._lock, self._store.lock():
            self._refresh_locked()
            ids, values, auto = op(self._weights)
            values = check_weight_values(values, what="weight values")
            if ids is None:  # op gave a fresh full-length array
                new = values
                changed = self._weights != new
                n_changed = int(np.count_nonzero(changed))
                if n_changed > len(new) // 4:  # most rows: store all weights, no ids
                    ids_c, vals_c = None, new
                else:
                    ids_c = np.flatnonzero(changed)
                    vals_c = new[ids_c]
                del changed
                matched = len(new)
            else:
                ids = np.asarray(ids, dtype=np.int64)
                changed = self._weights[ids] != values
                ids_c, vals_c = ids[changed], values[changed]
                n_changed = int(ids_c.size)
                new = self._next_weights()
                old_c = new[ids_c]
                new[ids_c] = vals_c
                matched = int(ids.size)
            header = {
                "created": time.time(),
                "author": self._author,
                "message": message if message is not None else auto,
                "rows_changed": n_changed,
                "rows_matched": matched,
                "action": action,
                **(extra or {}),
            }
            try:
                written = self._store.commit(self._revision, ids_c, vals_c, header, new)
            except BaseException:
                if new is self._weights:  # updated in place: put the old values back
                    new[ids_c] = old_c
                    new.flags.writeable = False
                raise
            new.flags.writeable = False
            self._weights = new
            self._revision = int(written["revision"])
        self._redo = redo or []  # a new edit clears redo; set before subscribers look
        logger.debug(
            "revision %d (%s) in %.1f ms",
            self._revision,
            header["message"],
            1e3 * (time.perf_counter() - t0),
        )
        self._notify()
        return self._revision

    def _next_weights(self) -> np.ndarray:
        """The array the next revision's weights go into.

        ``weights`` hands out a read-only array that must never change under the
        user, so normally the next revision gets a copy. When nobody else holds a
        reference to the current array (CPython reference count), it is updated
        in place instead: a million-row table then does not allocate 8 MB per edit.
        """
        w = self._weights
        # references: self._weights, the local w, and getrefcount's own argument
        if sys.getrefcount(w) <= 3 and w.flags.owndata:
            w.flags.writeable = True
            return w
        return w.copy()

    # ------------------------------------------------------------------ history
    def history(self) -> pd.DataFrame:
        """All revisions, oldest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``revision, parent, created, author, message, rows_changed``;
            ``created`` is a UTC timestamp. Damaged revision files are left out.
        """
        rows = []
        for rev in self._store.revision_numbers():
            try:
                h = self._store.header(rev)
            except Exception:  # damaged: reported by open(); history lists what is readable
                continue
            parent = h.get("parent")
            rows.append(
                {
                    "revision": rev,
                    "parent": pd.NA if parent is None else int(parent),
                    "created": pd.Timestamp(h.get("created", 0), unit="s", tz="UTC"),
                    "author": h.get("author", ""),
                    "message": h.get("message", ""),
                    "rows_changed": int(h.get("rows_changed", 0)),
                }
            )
        df = pd.DataFrame(
            rows, columns=["revision", "parent", "created", "author", "message", "rows_changed"]
        )
        df["parent"] = df["parent"].astype("Int64")
        return df

    def weights_at(self, rev: int) -> np.ndarray:
        """The weights as they were at revision ``rev``."""
        rev = _check_revision(rev)
        if rev == self._revision:
            return self._weights.copy()
        if rev not in set(self._store.revision_numbers()):
            raise ValueError(
                f"revision {rev} does not exist; revisions run from 0 to "
                f"{self._store.next_number() - 1}"
            )
        return self._store.weights_at(rev, len(self))

    def diff(self, a: int, b: int | None = None) -> pd.DataFrame:
        """Rows whose weight differs between revisions ``a`` and ``b``.

        Parameters
        ----------
        a, b : int
            Revisions; ``b`` defaults to the current one.

        Returns
        -------
        pandas.DataFrame
            Index ``row``; columns ``label``, ``weight_a``, ``weight_b``.
        """
        b = self._revision if b is None else b
        wa, wb = self.weights_at(a), self.weights_at(b)
        ids = np.flatnonzero(wa != wb)
        out = pd.DataFrame(
            {"label": self.labels[ids], "weight_a": wa[ids], "weight_b": wb[ids]},
            index=pd.Index(ids, name="row"),
        )
        out.attrs.update(a=int(a), b=int(b))
        return out

    def latest(self) -> WeightTable:
        """Pick up revisions (and columns) committed by other processes; returns ``self``."""
        with self._lock:  # the widget's comm handlers may run beside notebook code
            rev, weights = self._store.head(len(self), known=(self._revision, self._weights))
            changed = False
            if rev != self._revision:
                weights.flags.writeable = False
                self._weights, self._revision = weights, rev
                self._redo = []
                changed = True
            changed |= self._load_column_sets()
        if changed:
            self._notify()
        return self

    def _refresh_locked(self) -> None:
        rev, weights = self._store.head(len(self), known=(self._revision, self._weights))
        if rev != self._revision:
            weights.flags.writeable = False
            self._weights, self._revision = weights, rev

    # ------------------------------------------------------------------ columns
    def set_columns(
        self,
        columns: Mapping[str, Any],
        *,
        message: str | None = None,
        run: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> int:
        """Add or replace per-sample columns (e.g. a run's metrics), persisted in the store.

        Parameters
        ----------
        columns : mapping of str to array-like
            Each of length ``n_samples``; numbers, booleans or strings. The label
            column cannot be replaced.
        message : str, optional
            A note stored with the columns.
        run : str, optional
            The run these columns come from (``collect_metrics``,
            ``find_label_issues``); listed by :meth:`runs` with the revision the
            run was computed at.
        info : mapping, optional
            JSON-serialisable facts about the run (``kind``, ``aggregates``, ...),
            returned by :meth:`runs`.

        Returns
        -------
        int
            The table's revision after the columns were added.
        """
        if not columns:
            raise ValueError("set_columns needs at least one column")
        for key in columns:
            if key in RESERVED or key == self._label:
                raise ValueError(f"column name {key!r} is reserved; choose another name")
            if not isinstance(key, str) or not key:
                raise TypeError(f"column names must be non-empty strings; got {key!r}")
            if key in self._base_names:
                raise ValueError(f"{key!r} is a base data column and cannot be replaced")
        normal = _columns.normalise_columns(dict(columns), label=None, n_rows=len(self))
        for key, values in normal.items():
            if query.column_kind(values) == "image":
                raise ValueError(f"column {key!r}: added columns must be one-dimensional")
        parquet = _columns.encode_base(normal)
        set_name = (
            "set-" + hashlib.blake2b("|".join(sorted(normal)).encode(), digest_size=6).hexdigest()
        )
        header: dict[str, Any] = {
            "columns": list(normal),
            "created": time.time(),
            "author": self._author,
            "message": message or f"columns {', '.join(normal)}",
        }
        if run is not None:
            header.update(run=str(run), computed_at=self._revision, info=dict(info or {}))
        with self._store.lock():
            self._store.write_columns(set_name, parquet, header)
        self._column_sets.add(f"{set_name}@{header['created']}")
        self._columns.update(normal)
        self._columns_changed()
        self._notify()
        return self._revision

    def runs(self) -> pd.DataFrame:
        """The runs that wrote columns to this table, oldest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``run``, ``revision`` (the table revision the run was computed
            at), ``created`` (UTC), ``author``, ``kind``, ``columns`` (the columns it
            wrote) and ``aggregates`` (a dict, e.g. weighted accuracy and loss).
        """
        rows = []
        for header, _ in self._store.read_columns():
            if "run" not in header:
                continue
            info = header.get("info") or {}
            rows.append(
                {
                    "run": header["run"],
                    "revision": int(header.get("computed_at", 0)),
                    "created": pd.Timestamp(header.get("created", 0), unit="s", tz="UTC"),
                    "author": header.get("author", ""),
                    "kind": info.get("kind", ""),
                    "columns": list(header.get("columns", [])),
                    "aggregates": dict(info.get("aggregates") or {}),
                }
            )
        cols = ["run", "revision", "created", "author", "kind", "columns", "aggregates"]
        return pd.DataFrame(rows, columns=cols)

    def _load_column_sets(self) -> bool:
        changed = False
        for header, payload in self._store.read_columns():
            key = f"{header.get('set')}@{header.get('created')}"
            if key in self._column_sets:
                continue
            self._column_sets.add(key)
            cols = _columns.decode_base(payload, {}, {"n_rows": len(self)})
            self._columns.update(cols)
            changed = True
        if changed:
            self._columns_changed()
        return changed

    def _columns_changed(self) -> None:
        self._columns_version += 1  # part of view.table_version: view caches follow

    # ------------------------------------------------------------------ summaries
    def class_balance(self, num_samples: int | None = None) -> pd.DataFrame:
        """Per-class counts and weighted shares.

        Parameters
        ----------
        num_samples : int, optional
            Draws per epoch for ``expected_draws`` (default: the number of rows
            with weight > 0).

        Returns
        -------
        pandas.DataFrame
            Indexed by class: ``count``, ``included`` (weight > 0), ``weight_sum``,
            ``share`` (count / rows), ``effective_share`` (weight_sum / total
            weight) and ``expected_draws`` (``num_samples * effective_share``).

        Raises
        ------
        ValueError
            When every weight is 0 (there is no distribution to draw from).
        """
        counts, included, sums = view.class_aggregates(self)
        total = float(sums.sum())
        if total <= 0:
            raise ValueError(
                "all weights are 0, so there is no distribution to describe; include some "
                "rows first, e.g. set_weights(None, 1) or revert(...)"
            )
        if num_samples is None:
            num_samples = int(included.sum())
        elif not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
            raise ValueError(f"num_samples must be a positive integer; got {num_samples!r}")
        effective = sums / total
        return pd.DataFrame(
            {
                "count": counts,
                "included": included,
                "weight_sum": sums,
                "share": counts / max(len(self), 1),
                "effective_share": effective,
                "expected_draws": effective * num_samples,
            },
            index=pd.Index(self.classes, name=self._label),
        )

    def plot_balance(
        self, ax: matplotlib.axes.Axes | None = None, compare_to: int | None = None
    ) -> matplotlib.axes.Axes:
        """Bar chart of raw vs effective (weighted) share per class.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw (default: a new figure).
        compare_to : int, optional
            Also show the effective share at this earlier revision.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from .plots import plot_balance

        return plot_balance(self, ax=ax, compare_to=compare_to)

    def effective_share_at(self, rev: int) -> np.ndarray:
        """Effective (weighted) share per class at revision ``rev``."""
        w = self.weights_at(rev)
        sums = np.bincount(self.label_codes, weights=w, minlength=len(self.classes))
        total = sums.sum()
        return sums / total if total > 0 else np.zeros_like(sums)

    # ------------------------------------------------------------------ exports
    def create_sampler(
        self,
        num_samples: int | None = None,
        *,
        replacement: bool = True,
        exclude_zero_weights: bool = True,
        seed: int | None = None,
        live: bool = False,
        distributed: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> Any:
        """A ``torch.utils.data.Sampler`` drawing rows in proportion to their weights.

        See :func:`weightwidget.samplers.create_sampler` for every option; use it
        as ``DataLoader(dataset, sampler=table.create_sampler(seed=0))``.
        """
        from .samplers import create_sampler

        return create_sampler(
            self,
            num_samples,
            replacement=replacement,
            exclude_zero_weights=exclude_zero_weights,
            seed=seed,
            live=live,
            distributed=distributed,
            num_replicas=num_replicas,
            rank=rank,
        )

    def sample_weight(self, *, normalize: bool = False) -> np.ndarray:
        """Weights for Keras ``fit(sample_weight=...)``, in dataset order.

        ``normalize=True`` scales them to mean 1 over the included rows.
        """
        from ._sampling import sample_weight

        return sample_weight(self, normalize=normalize)

    def to_tf_dataset(
        self,
        features: Any,
        labels: Any = None,
        *,
        mode: str = "weights",
        batch_size: int | None = None,
        seed: int | None = None,
        exclude_zero_weights: bool = True,
    ) -> Any:
        """A ``tf.data.Dataset`` built from the current weights.

        ``mode="weights"`` yields ``(x, y, w)``; ``mode="resample"`` yields rows
        drawn by weight. Needs ``pip install "weightwidget[tf]"``. See
        :func:`weightwidget.tf.to_tf_dataset`.
        """
        from .tf import to_tf_dataset

        return to_tf_dataset(
            self,
            features,
            labels,
            mode=mode,
            batch_size=batch_size,
            seed=seed,
            exclude_zero_weights=exclude_zero_weights,
        )

    def widget(self, **kwargs: Any) -> Any:
        """The interactive :class:`~weightwidget.widget.WeightWidget` for this table."""
        from .widget import WeightWidget

        return WeightWidget(self, **kwargs)

    # ------------------------------------------------------------------ observers
    def subscribe(self, callback: Callable[[WeightTable], None]) -> Callable[[], None]:
        """Call ``callback(table)`` after every change of revision or columns.

        Returns
        -------
        callable
            Call it to unsubscribe.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _notify(self) -> None:
        for callback in list(self._subscribers):
            try:
                callback(self)
            except Exception:  # an observer must never break an edit
                logger.exception("weightwidget subscriber %r failed", callback)

    # ------------------------------------------------------------------ internals
    def _rows(self) -> np.ndarray:
        return np.arange(len(self), dtype=np.int64)  # cheap to make; not worth keeping

    def _factorize_labels(self) -> None:
        if self._codes is None:
            self._classes, self._codes = _columns.factorize(self._columns[self._label])

    def _filter_mask(self, text: str) -> np.ndarray:
        return view.filter_mask(self, text)

    def _resolve_again(
        self, where: Where, resolved: tuple[np.ndarray, str]
    ) -> tuple[np.ndarray, str]:
        """Resolve ``where`` again inside the lock, for filters only.

        Another process may have changed the weights a filter tests; masks and
        row ids stay as resolved.
        """
        return self._resolve(where) if isinstance(where, str) else resolved

    def _resolve(self, where: Where) -> tuple[np.ndarray, str]:
        """Row ids (int64) and a human description of ``where``."""
        n = len(self)
        if where is None:
            return self._rows(), "for all rows"
        if isinstance(where, str):
            return np.flatnonzero(self._filter_mask(where)), f"where {where}"
        if isinstance(where, slice):
            return self._rows()[where], f"for rows {_fmt_slice(where)}"
        if isinstance(where, (int, np.integer)) and not isinstance(where, bool):
            where = [where]
        if isinstance(where, pd.Series):
            where = where.to_numpy()
        try:
            arr = np.asarray(where)
        except Exception as exc:
            raise TypeError(_where_help(where)) from exc
        if arr.dtype == bool:
            if arr.ndim != 1:
                raise ValueError(f"a boolean mask must be one-dimensional; got shape {arr.shape}")
            check_length(arr, n, what="boolean mask", hint=" (one entry per row)")
            return np.flatnonzero(arr), "where mask"
        if arr.size == 0:
            return np.empty(0, dtype=np.int64), "for no rows"
        if arr.dtype.kind not in "iu":
            if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise TypeError(_where_help(where))
        ids = arr.astype(np.int64).ravel()
        bad = (ids < 0) | (ids >= n)
        if bad.any():
            first = int(ids[np.argmax(bad)])
            raise ValueError(
                f"row id {first} is out of range: row ids run from 0 to {n - 1}"
                + (f" ({int(bad.sum())} bad ids)" if bad.sum() > 1 else "")
            )
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):  # unsorted: look closer
            seen = np.zeros(n, dtype=bool)
            seen[ids] = True
            if int(np.count_nonzero(seen)) != len(ids):
                raise ValueError("row ids contain duplicates; give each row once")
        return ids, f"for {len(ids):,} selected rows" if len(ids) > 1 else f"for row {ids[0]}"


# ---------------------------------------------------------------------- helpers
def _author(author: str | None) -> str:
    if author is not None:
        return str(author)
    env = os.environ.get("WEIGHTWIDGET_AUTHOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _check_revision(rev: Any) -> int:
    if isinstance(rev, bool) or not isinstance(rev, (int, np.integer)):
        raise TypeError(f"a revision is an int; got {rev!r}")
    return int(rev)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _fmt_slice(s: slice) -> str:
    start = "" if s.start is None else s.start
    stop = "" if s.stop is None else s.stop
    step = "" if s.step is None else f":{s.step}"
    return f"{start}:{stop}{step}"


def _where_help(where: Any) -> str:
    return (
        f"where must be a filter string, a boolean mask, row ids, a slice or None; "
        f"got {type(where).__name__}"
    )
