"""``WeightTable``: a dataset's columns and its per-sample weights, with history.

The table is the only place weights change. Every change is one revision in a
:class:`~weightwidget.store.RevisionStore`, so another process that opens the
same store gets exactly the same weights.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _columns, _labels, query, view
from ._checks import (
    check_choice,
    check_length,
    check_weight_total,
    check_weight_values,
    did_you_mean,
    unknown_column_message,
)
from ._sources import torch_labels
from .balance import STRATEGIES, class_weights
from .errors import (
    NothingChangedWarning,
    ReadOnlyTableError,
    StoreCorruptedError,
    StoreError,
    StoreExistsError,
    StoreMismatchError,
    UndoConflictError,
)
from .protocol import SamplerOptions, TfDatasetOptions, takes_options
from .store import Change, Revision, RevisionStore, RevisionTaken, State

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

#: Actions :meth:`WeightTable.undo` can take back (label edits join them).
UNDOABLE = ("set", "scale", "balance", "revert", "labels")
_MAX_ATTEMPTS = 1000
_PROCESS_SESSION = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def default_session() -> str:
    """The undo session of tables made in this process (see :meth:`WeightTable.open`)."""
    return (
        os.environ.get("WEIGHTWIDGET_SESSION")
        or os.environ.get("JPY_SESSION_NAME")
        or _PROCESS_SESSION
    )


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
        state: State,
        author: str,
        session: str | None = None,
        pinned: bool = False,
    ) -> None:
        # private: use the from_* constructors or open()
        self._store = store
        self._columns = columns
        self._base_names = list(columns)
        self._label = label
        self._state = state
        state.weights.flags.writeable = False
        self._author = author
        self._session = session or default_session()
        self._pinned = pinned
        self._subscribers: list[Callable[[WeightTable], None]] = []
        self._lock = threading.RLock()  # edits and refreshes from several threads
        self._loaded_columns: set[int] = set()  # column revisions merged into _columns
        self._legacy_runs: list[dict[str, Any]] = []
        self._tops_cache: tuple[int, tuple[int | None, int | None]] | None = None
        self._columns_version = 0
        # labels: revision 0's encoding (set by _build, else computed once from the
        # base column), the classes added along each revision's chain, and the
        # view of the current labels (see _labels; rebuilt when they change)
        self._base_labels: _columns.Labels | None = None
        self._added: dict[int, tuple[Any, ...]] = {}
        self._label_view: _labels.LabelView | None = None
        self._label_column: Any = None

    @property
    def _weights(self) -> np.ndarray:
        return self._state.weights

    @property
    def _revision(self) -> int:
        return self._state.revision

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
        missing_label: Any = None,
        if_exists: str = "reuse",
        author: str | None = None,
        storage_options: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> WeightTable:
        """Build a table from a DataFrame; every other column becomes a table column.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per sample, in dataset order.
        label : str
            Name of the class-label column (ints, strings or categories). Missing
            values (None, NaN, ``pd.NA``) mark unlabelled rows: they are never
            drawn by samplers, weigh 0 in ``sample_weight``, are left out of tf
            datasets and of :meth:`class_balance`, whatever their stored weight.
            Label them later with :meth:`set_labels`.
        name : str, optional
            Name of the table; the default store is ``.weightwidget/<name>`` in the
            working directory. Without a name the data's fingerprint names it.
        store : str or path, optional
            Folder path or fsspec URL (``memory://x``, ``s3://bucket/x``) of the store.
        weights : str, optional
            A column holding starting weights (default: all 1.0).
        missing_label : scalar, optional
            A label value that also means "unlabelled", e.g. ``-1`` or ``"?"``
            (a numeric label column then holds NaN there).
        if_exists : {"reuse", "overwrite", "error"}, default="reuse"
            When the store exists: ``reuse`` reopens it and keeps its curated
            weights (the data must be the same), ``overwrite`` starts afresh,
            ``error`` raises.
        author : str, optional
            Recorded with each revision (default: ``$WEIGHTWIDGET_AUTHOR`` or the
            login name).
        storage_options : dict, optional
            Options of the fsspec filesystem of a URL ``store``, e.g. ``{"key": ...,
            "secret": ..., "endpoint_url": ...}`` for S3 (default: the usual
            environment variables, ``AWS_ACCESS_KEY_ID`` and so on).
        **unknown
            Refused with a hint: ``table_name=`` (3LC's spelling) is ``name=`` here.

        Returns
        -------
        WeightTable

        Raises
        ------
        ValueError
            Unknown label column, an empty frame, bad weights.
        TypeError
            An unknown keyword (with the one meant, e.g. ``name=`` for ``table_name=``).
        StoreMismatchError
            The store holds different data under this name; the message says what differs.
        """
        _refuse_options(unknown, "from_pandas")
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_pandas expects a pandas DataFrame; got {type(df).__name__}")
        names = _columns.frame_names(df.columns)
        if label not in names:
            raise ValueError(f"label column: {unknown_column_message(label, names)}")
        initial = None
        if weights is not None:
            if weights not in names:
                raise ValueError(f"weights column: {unknown_column_message(weights, names)}")
            if weights == label:
                raise ValueError(f"weights={weights!r} is the label column; name another column")
            initial = df.iloc[:, names.index(weights)].to_numpy()
        columns: dict[str, Any] = {label: df.iloc[:, names.index(label)]}
        for i, key in enumerate(names):
            if key not in (label, weights):
                columns[key] = df.iloc[:, i]
        return cls._build(
            columns,
            label=label,
            name=name,
            store=store,
            initial=initial,
            if_exists=if_exists,
            author=author,
            source="pandas DataFrame",
            storage_options=storage_options,
            missing_label=missing_label,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        labels: Any,
        name: str | None = None,
        store: str | os.PathLike[str] | None = None,
        weights: Any = None,
        missing_label: Any = None,
        if_exists: str = "reuse",
        author: str | None = None,
        storage_options: dict[str, Any] | None = None,
        **columns: Any,
    ) -> WeightTable:
        """Build a table from a label array and extra columns given as keywords.

        Parameters
        ----------
        labels : array-like of shape (n_samples,)
            Class labels (ints or strings); None or NaN where a row is unlabelled.
        name, store, missing_label, if_exists, author, storage_options
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
        data: dict[str, Any] = {"label": labels, **_extra_columns(columns)}
        return cls._build(
            data,
            label="label",
            name=name,
            store=store,
            initial=weights,
            if_exists=if_exists,
            author=author,
            source="arrays",
            storage_options=storage_options,
            missing_label=missing_label,
        )

    @classmethod
    def from_torch_dataset(
        cls,
        dataset: Any,
        *,
        name: str | None = None,
        store: str | os.PathLike[str] | None = None,
        label_fn: Callable[[Any], Any] | None = None,
        missing_label: Any = None,
        if_exists: str = "reuse",
        author: str | None = None,
        progress: bool = True,
        storage_options: dict[str, Any] | None = None,
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
        missing_label : scalar, optional
            A label value meaning "unlabelled", e.g. ``-1`` (torchvision's STL10
            marks its unlabelled split so).
        name, store, if_exists, author, storage_options, **columns
            As in :meth:`from_arrays`.

        Returns
        -------
        WeightTable
        """
        extra = _extra_columns(columns)  # before reading every item
        labels = torch_labels(dataset, label_fn=label_fn, progress=progress)
        data: dict[str, Any] = {"label": labels, **extra}
        return cls._build(
            data,
            label="label",
            name=name,
            store=store,
            initial=None,
            if_exists=if_exists,
            author=author,
            source=f"torch dataset {type(dataset).__name__}",
            storage_options=storage_options,
            missing_label=missing_label,
        )

    @classmethod
    def open(
        cls,
        store: str | os.PathLike[str],
        *,
        revision: int | None = None,
        author: str | None = None,
        session: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> WeightTable:
        """Reopen a persisted table, in this or any other process.

        Parameters
        ----------
        store : str or path
            The store's folder path or fsspec URL.
        revision : int, optional
            Open this past revision, read-only: its weights, labels and columns,
            for inspection, ``diff`` and training on exactly that data. Edits raise
            :class:`~weightwidget.errors.ReadOnlyTableError` and :meth:`latest`
            leaves it where it is. Default: the newest revision, editable.
        author : str, optional
            Recorded with revisions made through this table.
        session : str, optional
            Who "this table" is for :meth:`undo` and :meth:`redo`: they undo the
            newest edit committed by this session. Default: ``$WEIGHTWIDGET_SESSION``,
            else the notebook's path in a Jupyter kernel (so undo survives a kernel
            restart), else one id per process.
        storage_options : dict, optional
            Options of the fsspec filesystem of a URL ``store`` (as in
            :meth:`from_pandas`).

        Returns
        -------
        WeightTable
            At the newest revision that reads back whole (or at ``revision``). A
            damaged file is reported with a
            :class:`~weightwidget.errors.StoreCorruptionWarning` naming it.
        """
        st = RevisionStore(os.fspath(store), storage_options=storage_options)
        meta = st.read_meta()
        if revision is not None:
            revision = _check_revision(revision)
            newest = st.newest_number()
            if not 0 <= revision <= newest:
                raise ValueError(
                    f"revision {revision} does not exist; revisions run from 0 to {newest}"
                )
        parquet, tensors = st.read_base()
        columns = _columns.decode_base(parquet, tensors, meta)
        del parquet, tensors  # before the weights are read: keeps the peak down
        return cls._from_store(st, columns, meta, author, session=session, revision=revision)

    @classmethod
    def _from_store(
        cls,
        st: RevisionStore,
        columns: dict[str, Any],
        meta: dict[str, Any],
        author: str | None,
        *,
        session: str | None = None,
        revision: int | None = None,
        base_labels: _columns.Labels | None = None,
    ) -> WeightTable:
        label = meta["label"]
        encoded: list[_columns.Labels] = [] if base_labels is None else [base_labels]

        def base_labels() -> np.ndarray:
            if not encoded:
                encoded.append(_columns.label_encoding(columns[label]))
            return encoded[0].codes.astype(np.int32)

        if revision is None:
            state = st.head_state(base_labels)
        else:
            state = st.state_at(revision, base_labels)
        table = cls(
            store=st,
            columns=columns,
            label=label,
            state=state,
            author=_author(author),
            session=session,
            pinned=revision is not None,
        )
        if encoded:
            table._base_labels = encoded[0]
        table._sync_labels()
        if meta.get("format_version", 1) < 2 or meta.get("legacy_columns"):
            table._load_legacy_columns()
        table._load_columns()
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
        storage_options: dict[str, Any] | None = None,
        missing_label: Any = None,
    ) -> WeightTable:
        check_choice(if_exists, IF_EXISTS, what="if_exists")
        if name is not None and (not isinstance(name, str) or not _NAME.match(name)):
            raise ValueError(
                f"name must be 1-128 letters, digits, '.', '_' or '-' (starting with a letter "
                f"or digit); got name={name!r}"
            )
        norm = _columns.normalise(data, label=label, missing_label=missing_label)
        columns, kinds, labels = norm.columns, norm.kinds, norm.labels
        assert labels is not None
        n = len(labels.codes)
        if initial is None:
            initial_w = np.ones(n)
        else:
            initial_w = np.array(check_weight_values(initial, what="starting weights"))
            check_length(initial_w, n, what="weights")
        hashes = _columns.column_hashes(columns, kinds)
        fingerprint = _columns.fingerprint(hashes, _columns.array_hash(initial_w))
        if store is not None:
            url = os.fspath(store)
        else:
            url = str(Path(DEFAULT_STORE_DIR) / (name or f"table-{fingerprint[:12]}"))
            if name is None and not Path(url).exists():
                url = _legacy_default_store(columns, kinds, initial_w) or url
        st = RevisionStore(url, storage_options=storage_options)
        if st.exists():
            if if_exists == "error":
                raise StoreExistsError(
                    f"a store already exists at {st.url}; pass if_exists='reuse' to reopen "
                    "it or if_exists='overwrite' to start afresh"
                )
            if if_exists == "reuse":
                meta = st.read_meta()
                same, stored_hashes = _columns.stored_fingerprint(
                    meta, columns, kinds, initial_w, hashes, fingerprint
                )
                if not same:
                    raise StoreMismatchError(
                        f"the store at {st.url} holds different data than given: "
                        f"{_columns.describe_mismatch(meta, columns, stored_hashes, label)}. "
                        "Pass if_exists='overwrite' to replace it, or another name= / store="
                    )
                logger.info("reopening %s at its latest revision", st.url)
                table = cls._from_store(st, columns, meta, author, base_labels=labels)
                return table
            st.destroy()
            st = RevisionStore(url, storage_options=storage_options)
        if name is None:
            name = f"table-{fingerprint[:12]}"
        meta = {
            "format": "weightwidget-store",
            "name": name,
            "n_rows": n,
            "label": label,
            "columns": [{"name": k, "kind": kinds[k], "hash": hashes[k]} for k in columns],
            "fingerprint": fingerprint,
            "fingerprint_method": _columns.FINGERPRINT_METHOD,
            "created": time.time(),
            "source": source,
        }
        header = {
            "created": time.time(),
            "author": _author(author),
            "message": f"created from {source} ({n:,} rows, {len(labels.classes)} classes"
            + (f", {labels.n_missing:,} unlabelled)" if labels.n_missing else ")"),
            "rows_changed": n,
            "action": "create",
        }
        files = {
            f"base/{rel}": blob for rel, blob in _columns.encode_base_files(columns, kinds).items()
        }
        created = st.create(meta, files, initial_w, header)
        del files
        _columns.release_arrow_memory()
        if not created:  # another process created it meanwhile (every DDP rank at start)
            if if_exists == "error":
                raise StoreExistsError(
                    f"a store was created at {st.url} meanwhile; pass if_exists='reuse' to open it"
                )
            meta = st.read_meta()
            if meta.get("fingerprint") != fingerprint:
                raise StoreMismatchError(
                    f"another process created the store at {st.url} meanwhile with different "
                    f"data: {_columns.describe_mismatch(meta, columns, hashes, label)}"
                )
            return cls._from_store(st, columns, meta, author, base_labels=labels)
        table = cls(
            store=st,
            columns=columns,
            label=label,
            state=State(0, initial_w),
            author=_author(author),
        )
        table._base_labels = labels
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

        Returns a 1-D ndarray for numbers and booleans; for text a
        :class:`pandas.Categorical` when few values are distinct (always for the
        label column) or pandas' Arrow-backed string array
        (:class:`pandas.arrays.ArrowStringArray`) when most are; an ndarray of
        shape ``(n, h, w[, c])`` for images. ``"weight"`` and ``"row"`` give the
        current weights and row ids.
        """
        if name == "weight":
            return self._weights
        if name == "row":
            return self._rows()
        if name not in self._columns:
            raise KeyError(unknown_column_message(name, [*self._columns, *RESERVED]))
        if name == self._label:
            return self._current_label_column()
        return self._columns[name]

    def column_kind(self, name: str) -> str:
        """``"numeric"``, ``"bool"``, ``"string"`` or ``"image"``."""
        return query.column_kind(self.column(name))

    @property
    def labels(self) -> np.ndarray:
        """Class label of each sample at the current revision, in dataset order.

        NaN where a row is unlabelled (a numeric label column is then float).
        """
        return np.asarray(_columns.label_values(self._current_label_column()))

    @property
    def classes(self) -> np.ndarray:
        """The class labels, sorted; never a missing marker.

        The classes of the label column as ingested, plus those added by
        :meth:`set_labels` (``allow_new_classes=True``) up to this revision. A
        class stays listed when no row holds it any more, so per-class arrays keep
        their length across label edits; adding a class shifts the index of the
        classes after it (see :attr:`label_codes`).
        """
        return self._labels_view().classes

    @property
    def label_codes(self) -> np.ndarray:
        """Index into :attr:`classes` of each sample's label; -1 where unlabelled.

        Read-only. Changes with label edits; after a class is added, the codes
        of the classes sorted after it are one higher.
        """
        return self._labels_view().codes

    @property
    def n_unlabelled(self) -> int:
        """Rows without a label (``label_codes == -1``): never trained on."""
        return self._labels_view().n_unlabelled

    @property
    def n_labelled(self) -> int:
        """Rows with a label."""
        return len(self) - self.n_unlabelled

    @property
    def df(self) -> pd.DataFrame:
        """A DataFrame of the columns plus the current ``weight`` (index: row id)."""
        data: dict[str, Any] = {}
        for key in self._columns:
            values = self.column(key)
            data[key] = list(values) if query.column_kind(values) == "image" else values
        data["weight"] = self._weights
        return pd.DataFrame(data, index=pd.RangeIndex(len(self), name="row"))

    def __repr__(self) -> str:
        unlabelled = self.n_unlabelled
        return (
            f"<WeightTable {self.name!r}: {len(self):,} rows"
            + (f" ({unlabelled:,} unlabelled)" if unlabelled else "")
            + f", {len(self.classes)} classes, revision {self._revision}, store {self._store.url}>"
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

    def set_labels(
        self,
        where: Where,
        value: Any,
        message: str | None = None,
        *,
        allow_new_classes: bool = False,
    ) -> int:
        """Set the label of the selected rows; one new revision, like a weight edit.

        Label edits share everything weight edits have: :meth:`history`,
        :meth:`diff`, :meth:`undo` / :meth:`redo` (selective: undo takes back this
        session's last edit and refuses if a later revision changed those rows'
        labels), :meth:`revert`, other processes (:meth:`latest`, :meth:`open`) and
        live samplers, which follow them from their next epoch.

        Parameters
        ----------
        where : str, array-like of bool, array-like of int, slice or None
            Which rows (see :meth:`mask`).
        value : scalar or array-like
            A class (``3``, ``"cat"``), or None / NaN to make the rows unlabelled;
            or one value per selected row (in the order of :meth:`set_weights`).
        message : str, optional
            Revision message; generated when omitted, e.g.
            ``"set label=3 where label is missing and r1_confidence > 0.9 (40 rows)"``.
        allow_new_classes : bool, default=False
            Accept values that are not classes yet. They are added to
            :attr:`classes` (kept sorted: the codes of the classes after a new one
            move up by one in :attr:`label_codes`) and recorded in this revision,
            so reopening the store, or opening any later revision, lists them.

        Returns
        -------
        int
            The new revision.

        Raises
        ------
        ValueError
            A value that is not a class (without ``allow_new_classes``), a value
            array of the wrong length, a malformed filter, row ids out of range.
        TypeError
            A value of the wrong kind: text for a numeric label column or a
            number for a text one.
        """
        per_row = np.ndim(value) > 0
        if not isinstance(allow_new_classes, bool):
            raise TypeError(f"allow_new_classes must be True or False; got {allow_new_classes!r}")
        values = _label_array(value, per_row)
        resolved = self._resolve(where)  # validate before taking the lock
        label = self._label

        def codes_for(n: int, desc: str) -> tuple[np.ndarray, list[Any]]:
            if per_row:
                check_length(values, n, what="value", hint=f" (one per selected row: {desc})")
            store_classes = self._labels_view().store_classes
            codes, added = _labels.codes_for(
                values, store_classes, label=label, allow_new_classes=allow_new_classes
            )
            if not per_row:
                codes = np.full(n, codes[0], dtype=np.int32)
                if n == 0:
                    added = []
            return codes, added

        try:  # refuse bad values before the lock
            codes_for(len(resolved[0]), resolved[1])
        except ValueError:
            if self._pinned or not self._refresh():
                raise
            self._notify()  # another process may have added the class meanwhile
            codes_for(len(resolved[0]), resolved[1])

        def op(current: np.ndarray) -> tuple[Any, ...]:
            ids, desc = self._resolve_again(where, resolved)
            codes, added = codes_for(len(ids), desc)
            shown = "per-row values" if per_row else _label_text(values[0])
            new = f" (new {'class' if len(added) == 1 else 'classes'} " + (
                ", ".join(map(repr, added)) + ")" if added else ""
            )
            return (
                np.empty(0, dtype=np.int64),
                np.empty(0),
                f"set {label}={shown} {desc} ({len(ids):,} rows){new if added else ''}",
                _LabelEdit(ids, codes, tuple(added)),
            )

        return self._commit(op, message, action="labels")

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
        weight 0 stay excluded. Unlabelled rows are left as they are (they never
        train, whatever their weight).

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

        def op(current: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
            codes = self.label_codes  # the newest labels: op runs after a refresh
            k = len(self.classes)
            if where is None:  # whole-table path: full-length arrays, fewer temporaries
                keep = current > 0  # existing zeros stay excluded
                safe = codes
                unlabelled = codes < 0
                has_unlabelled = bool(unlabelled.any())
                if has_unlabelled:  # left as they are: out of the counts, weight kept
                    keep &= ~unlabelled
                    safe = np.where(unlabelled, 0, codes)
                counts = np.bincount(safe, weights=keep, minlength=k)
                if not counts.any():
                    raise ValueError(
                        "nothing to balance: every labelled row has weight 0; include some "
                        "rows first, e.g. set_weights(None, 1)"
                    )
                new = class_weights(counts, strategy, beta=beta)[safe]
                np.multiply(new, keep, out=new)
                if has_unlabelled:
                    new[unlabelled] = current[unlabelled]
                return (
                    None,
                    new,
                    (
                        f"balance {strategy} for all rows ({int(counts.sum()):,} rows, "
                        f"{int((counts > 0).sum())} classes)"
                    ),
                )
            ids, desc = self._resolve_again(where, resolved)
            ids = ids[(current[ids] > 0) & (codes[ids] >= 0)]  # zeros stay excluded
            if len(ids) == 0:
                raise ValueError(
                    f"nothing to balance: every labelled row {desc} has weight 0; include "
                    "some rows first, e.g. set_weights(where, 1)"
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
        """Restore every row's weight (and label) as it was at revision ``rev``.

        A whole-table restore, as one new revision: every row whose weight or label
        differs from revision ``rev`` gets that revision's value back, whoever changed
        it since, other processes included. To take back only your own last edit,
        use :meth:`undo`. Added columns (metrics) are kept, and so are classes added
        since ``rev`` (listed in :attr:`classes`, with no rows unless relabelled).

        Returns
        -------
        int
            The new revision; the current one, with a
            :class:`~weightwidget.errors.NothingChangedWarning`, when revision ``rev``
            already has the current weights (nothing is committed then).
        """
        rev = _check_revision(rev)
        state = self._state_at(rev)
        target = state.weights
        if state.labels is not None:
            then, now = self._added_classes(rev), self._added_classes(self._revision)
            short, long = sorted((then, now), key=len)
            if long[: len(short)] != short:  # another line: its codes mean other classes
                raise ValueError(
                    f"revision {rev} is not on this table's line of revisions (its classes "
                    f"{list(then)!r} were added on another branch); revert to an ancestor"
                )

        def op(current: np.ndarray) -> tuple[Any, ...]:
            ids = np.flatnonzero(current != target)
            labels = None
            if state.labels is not None or self._state.labels is not None:
                codes = self._base_label_codes() if state.labels is None else state.labels
                rows = np.flatnonzero(self._stored_codes() != codes)
                labels = _LabelEdit(rows, codes[rows])
            n = len(ids) if labels is None else int(np.union1d(ids, labels.ids).size)
            return ids, target[ids], f"revert to revision {rev} ({n:,} rows)", labels

        return self._commit(
            op, message, action="revert", extra={"restores": rev}, skip_if_unchanged=True
        )

    def undo(self, *, force: bool = False) -> int:
        """Take back this table's own last edit, as a new revision.

        Only the rows that edit changed get back the values they had before it;
        edits made meanwhile by other processes, or by other sessions, stay. "Own"
        means committed by this table's ``session`` (see :meth:`open`); the undo
        history is read from the store, so it survives a kernel restart.

        Parameters
        ----------
        force : bool, default=False
            Undo even if a later revision changed some of those rows (their later
            values are then overwritten).

        Returns
        -------
        int
            The new revision.

        Raises
        ------
        ValueError
            When this session has nothing left to undo.
        UndoConflictError
            When a later revision (named in the message) changed some of the rows
            this undo would restore; pass ``force=True`` to restore them anyway.
        """
        self._check_writable()
        with self._lock:
            self._refresh()
            top, _ = self._undo_redo_tops()
            if top is None:
                raise ValueError(
                    "nothing to undo: this session has no edit left to undo "
                    f"(session {self._session!r})"
                )
            edit = self._store.read_revision(top)
            before = self._store.state_at(int(edit.parent or 0), self._base_label_codes)
            return self._commit_inverse(
                edit,
                before,
                force=force,
                action="undo",
                extra={"undoes": top},
                words=f"undo: {edit.header.get('message', '')}",
            )

    def redo(self, *, force: bool = False) -> int:
        """Redo the edit this session undid last (the inverse of that undo).

        Parameters
        ----------
        force : bool, default=False
            Redo even if a later revision changed some of the rows.

        Raises
        ------
        ValueError
            When nothing was undone since this session's last edit.
        UndoConflictError
            When a later revision changed rows the redo would set.
        """
        self._check_writable()
        with self._lock:
            self._refresh()
            _, top = self._undo_redo_tops()
            if top is None:
                raise ValueError("nothing to redo: this session undid nothing since its last edit")
            undo = self._store.read_revision(top)
            undone = self._store.header(int(undo.header["undoes"]))
            before = self._store.state_at(int(undo.parent or 0), self._base_label_codes)
            return self._commit_inverse(
                undo,
                before,
                force=force,
                action="redo",
                extra={"redoes": top},
                words=f"redo: {undone.get('message', '')}",
            )

    def _commit_inverse(
        self,
        revision: Revision,
        before: State,
        *,
        force: bool,
        action: str,
        extra: dict[str, Any],
        words: str,
    ) -> int:
        """Commit the inverse of ``revision``: its rows back to their values in ``before``.

        Refuses (unless ``force``) when a later revision changed any of those rows,
        that is when their current values are no longer the ones ``revision`` wrote.
        """
        weight = revision.change("weight")
        label = revision.change("label")
        if weight is None and label is None:
            raise ValueError(
                f"revision {revision.number} changed no weight and no label; nothing to {action}"
            )
        before_codes = None
        if label is not None:
            before_codes = self._base_label_codes() if before.labels is None else before.labels
        # the rows it changed, and the values it wrote; a change that stored every row
        # changed only the rows that differ from before
        w_ids = w_vals = l_ids = l_vals = None
        if weight is not None:
            if weight.ids is None:
                w_ids = np.flatnonzero(weight.values != before.weights)
                w_vals = weight.values[w_ids]
            else:
                w_ids, w_vals = weight.ids, weight.values
        if label is not None:
            if label.ids is None:
                l_ids = np.flatnonzero(label.values != before_codes)
                l_vals = label.values[l_ids]
            else:
                l_ids, l_vals = label.ids, label.values

        def op(current: np.ndarray) -> tuple[Any, ...]:
            stored = self._stored_codes() if label is not None else None
            moved = np.empty(0, dtype=np.int64)
            culprits: list[int] = []
            if w_ids is not None:
                w_moved = w_ids[current[w_ids] != w_vals]
                if w_moved.size and not force:
                    culprits.append(self._last_change_of(w_moved, after=revision.number) or -1)
                moved = w_moved
            if l_ids is not None:
                l_moved = l_ids[stored[l_ids] != l_vals]
                if l_moved.size and not force:
                    culprits.append(
                        self._last_change_of(l_moved, after=revision.number, field="label") or -1
                    )
                moved = np.union1d(moved, l_moved)
            if moved.size and not force:
                culprit = max(culprits)
                head = self._store.header(culprit) if culprit >= 0 else {}
                shown = ", ".join(map(str, moved[:10].tolist()))
                more = f" and {moved.size - 10:,} more" if moved.size > 10 else ""
                raise UndoConflictError(
                    f"cannot {action} revision {revision.number} "
                    f"({revision.header.get('message', '')!r}): rows {shown}{more} were "
                    f"changed since by revision {culprit} ({head.get('author', '?')}: "
                    f"{head.get('message', '')!r}); pass force=True to {action} anyway",
                    revision=culprit,
                    rows=moved[:10].tolist(),
                )
            ids = np.empty(0, dtype=np.int64)
            old = np.empty(0)
            if w_ids is not None:
                old = before.weights[w_ids]
                differ = current[w_ids] != old
                ids, old = w_ids[differ], old[differ]
            labels = None
            if l_ids is not None:
                old_codes = before_codes[l_ids]
                differ = stored[l_ids] != old_codes
                labels = _LabelEdit(l_ids[differ], old_codes[differ])
            n = ids.size if labels is None else int(np.union1d(ids, labels.ids).size)
            return ids, old, f"{words} ({n:,} rows)", labels

        return self._commit(op, None, action=action, extra=extra, skip_if_unchanged=True)

    def _last_change_of(self, rows: np.ndarray, *, after: int, field: str = "weight") -> int | None:
        """The newest revision after ``after`` that changed ``field`` of any of ``rows``."""
        for rev in range(self._revision, after, -1):
            try:
                revision = self._store.read_revision(rev)
            except StoreCorruptedError:
                continue
            change = revision.change(field)
            if change is not None and (change.ids is None or np.isin(rows, change.ids).any()):
                return rev
        return None

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` has an edit of this session to take back."""
        return self._undo_redo_tops()[0] is not None

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` has an undo of this session to reverse."""
        return self._undo_redo_tops()[1] is not None

    @property
    def session(self) -> str:
        """Who this table is for undo/redo (see :meth:`open`)."""
        return self._session

    def _undo_redo_tops(self) -> tuple[int | None, int | None]:
        """The revisions :meth:`undo` and :meth:`redo` would reverse, from the history.

        Read backwards from the current revision, over this session's revisions
        only: undo takes back the newest edit (or redo) that no later undo took
        back; redo reverses the newest undo that was not redone and that no later
        edit of this session superseded.
        """
        if self._pinned:
            return None, None
        cached = self._tops_cache
        if cached is not None and cached[0] == self._revision:
            return cached[1]
        tops = self._scan_undo_redo_tops()
        self._tops_cache = (self._revision, tops)
        return tops

    def _scan_undo_redo_tops(self) -> tuple[int | None, int | None]:
        undone: set[int] = set()
        redone: set[int] = set()
        undo_top: int | None = None
        redo_top: int | None = None
        redo_open = True
        for header in self._headers_backward(session=self._session):
            if header.get("session") != self._session:
                continue
            rev, action = int(header["revision"]), header.get("action")
            if action == "undo":
                undone.add(int(header.get("undoes", -1)))
                if redo_open and redo_top is None and rev not in redone:
                    redo_top = rev
            elif action == "redo":
                redone.add(int(header.get("redoes", -1)))
                if undo_top is None and rev not in undone:
                    undo_top = rev
            elif action in UNDOABLE and int(header.get("rows_changed", 0)) > 0:
                if undo_top is None and rev not in undone:
                    undo_top = rev
                redo_open = False
            if undo_top is not None and (redo_top is not None or not redo_open):
                break
        return undo_top, redo_top

    def _headers_backward(self, *, session: str | None = None) -> Iterator[dict[str, Any]]:
        """Headers from the current revision back to 0 (damaged revisions skipped).

        With ``session``, whole blocks of 256 revisions whose history chunk says
        that session committed none of them are skipped unread.
        """
        from .store import LOG_CHUNK

        store = self._store
        rev = self._revision
        while rev >= 0:
            block = rev // LOG_CHUNK
            if session is not None and rev == block * LOG_CHUNK + LOG_CHUNK - 1:
                sessions = store.block_sessions(block)
                if sessions is not None and session not in sessions:
                    rev -= LOG_CHUNK
                    continue
            if rev not in store._headers and rev - block * LOG_CHUNK > 8:
                store.header_block(block)  # one chunk instead of up to 256 files
            try:
                yield store.header(rev)
            except StoreCorruptedError:
                pass
            rev -= 1

    def _commit(
        self,
        op: Callable[[np.ndarray], tuple[Any, ...]],
        message: str | None,
        *,
        action: str,
        extra: dict[str, Any] | None = None,
        skip_if_unchanged: bool = False,
        columns: dict[str, Any] | None = None,
    ) -> int:
        """Apply ``op`` to the newest weights and commit the result as one revision.

        ``op(weights)`` returns ``(ids, values, message)``: new weights for rows
        ``ids`` (None: ``values`` is every row's weight), optionally followed by a
        :class:`_LabelEdit` (new store codes for some rows, classes it adds).

        ``op`` runs on the newest revision, after picking up what other processes
        committed, so two writers both land and neither edit is lost. Claiming the
        revision number is the commit: if another writer claimed it first, ``op``
        runs again on the newer weights and labels.
        """
        self._check_writable()
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message must be a string; got {type(message).__name__}")
        t0 = time.perf_counter()
        with self._lock, self._store.lock():
            for _attempt in range(_MAX_ATTEMPTS):
                self._refresh_locked()
                result = op(self._weights)
                ids, values, auto = result[:3]
                label_edit: _LabelEdit | None = result[3] if len(result) > 3 else None
                labels_after, label_change, label_rows = self._label_change(label_edit)
                values = check_weight_values(values, what="weight values")
                old_c: np.ndarray | None = None
                weight_rows: np.ndarray | None = None  # ids whose weight changes (if needed)
                if ids is None:  # op gave a fresh full-length array
                    new = values
                    changed = self._weights != new
                    n_changed = int(np.count_nonzero(changed))
                    if label_rows.size and n_changed:
                        weight_rows = np.flatnonzero(changed)
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
                    matched = int(ids.size)
                    new = self._weights
                    weight_rows = ids_c
                if label_edit is not None:
                    matched = max(matched, int(label_edit.ids.size))
                rows_changed = n_changed
                if label_rows.size:
                    rows_changed = (
                        int(np.union1d(weight_rows, label_rows).size)
                        if n_changed and weight_rows is not None
                        else n_changed + int(label_rows.size)
                    )
                if rows_changed == 0 and skip_if_unchanged:
                    warnings.warn(
                        f"{auto}: no row would change, so nothing was committed "
                        f"(the table stays at revision {self._revision})",
                        NothingChangedWarning,
                        stacklevel=3,
                    )
                    return self._revision
                if ids is not None and n_changed:
                    new = self._next_weights()
                    changed_ids = ids_c
                    old_c = new[ids_c]
                    new[ids_c] = vals_c
                    if n_changed > len(new) // 4:  # most rows: store all weights, no ids
                        ids_c, vals_c = None, new
                check_weight_total(new, what="the weights after this edit")
                header = {
                    "created": time.time(),
                    "author": self._author,
                    "session": self._session,
                    "message": message if message is not None else auto,
                    "rows_changed": rows_changed,
                    "rows_matched": matched,
                    "action": action,
                    **(extra or {}),
                }
                if label_edit is not None:
                    header["labels_changed"] = int(label_rows.size)
                if label_change is not None and label_edit is not None and label_edit.added:
                    first = len(self._labels_view().store_classes)
                    header["classes_added"] = _labels.header_entry(first, label_edit.added)
                changes = [Change("weight", ids_c, vals_c)] if n_changed else []
                if label_change is not None:
                    changes.append(label_change)
                after = State(-1, new, labels_after, self._state.columns)
                number = self._store.newest_number() + 1
                if columns is not None:
                    after.columns = (*after.columns, number)
                try:
                    written = self._store.commit(number, self._revision, changes, header, after)
                except BaseException as exc:
                    if old_c is not None and new is self._state.weights:
                        new[changed_ids] = old_c  # updated in place: put the old values back
                    if new is self._state.weights:
                        new.flags.writeable = False
                    if isinstance(exc, RevisionTaken):
                        continue  # another writer was quicker: redo the edit on its revision
                    raise
                new.flags.writeable = False
                added_before = self._added_classes(self._revision) if label_change else ()
                self._state = State(int(written["revision"]), new, after.labels, after.columns)
                if label_change is not None:
                    added = label_edit.added if label_edit is not None else ()
                    self._added[self._revision] = added_before + tuple(added)
                    self._sync_labels(changed=True)
                if columns is not None:
                    self._columns.update(columns)
                    self._loaded_columns.add(self._revision)
                    self._columns_changed()
                break
            else:
                raise StoreError(
                    f"could not commit to {self._store.url}: {_MAX_ATTEMPTS} other commits "
                    "landed first; try again"
                )
        logger.debug(
            "revision %d (%s) in %.1f ms",
            self._revision,
            header["message"],
            1e3 * (time.perf_counter() - t0),
        )
        self._notify()
        return self._revision

    def _label_change(
        self, edit: _LabelEdit | None
    ) -> tuple[np.ndarray | None, Change | None, np.ndarray]:
        """The store codes after ``edit``, its :class:`Change` and the rows it changes.

        Without a change the labels stay as they are (the same array, or None).
        """
        none = np.empty(0, dtype=np.int64)
        if edit is None:
            return self._state.labels, None, none
        current = self._stored_codes()
        ids = np.asarray(edit.ids, dtype=np.int64)
        codes = np.asarray(edit.codes, dtype=np.int32)
        differ = current[ids] != codes
        rows = ids[differ]
        if not rows.size:
            return self._state.labels, None, none
        after = current.astype(np.int32, copy=True)  # never in place: views hand it out
        after[rows] = codes[differ]
        if rows.size > len(after) // 4:  # most rows: store every code, no ids
            return after, Change("label", None, after), rows
        return after, Change("label", rows, codes[differ]), rows

    def _next_weights(self) -> np.ndarray:
        """The array the next revision's weights go into.

        ``weights`` hands out a read-only array that must never change under the
        user, so normally the next revision gets a copy. When nobody else holds a
        reference to the current array (CPython reference count), it is updated
        in place instead: a million-row table then does not allocate 8 MB per edit.
        """
        w = self._state.weights
        # references: the state's attribute, the local w, and getrefcount's own argument
        if sys.getrefcount(w) <= 3 and w.flags.owndata:
            w.flags.writeable = True
            return w
        return w.copy()

    def _check_writable(self) -> None:
        if self._pinned:
            raise ReadOnlyTableError(
                f"this table was opened at revision {self._revision} (read-only); open it "
                f"without revision= to edit: WeightTable.open({self._store.url!r})"
            )

    # ------------------------------------------------------------------ history
    def history(self, *, limit: int | None = None) -> pd.DataFrame:
        """Revisions up to the current one, oldest first.

        Parameters
        ----------
        limit : int, optional
            Only the newest ``limit`` revisions (cheap on long histories).

        Returns
        -------
        pandas.DataFrame
            Columns ``revision, parent, created, author, message, rows_changed``,
            plus ``action`` and ``session``; ``created`` is a UTC timestamp.
            Damaged revision files are left out.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be a non-negative integer; got {limit!r}")
        if limit is None:
            headers = list(self._store.headers(self._revision).values())
        else:
            headers = []
            for h in self._headers_backward():
                if len(headers) >= limit:
                    break
                headers.append(h)
            headers.reverse()
        cols = ["revision", "parent", "created", "author", "message", "rows_changed"]
        df = pd.DataFrame(
            {
                "revision": [int(h["revision"]) for h in headers],
                "parent": pd.array(
                    [None if h.get("parent") is None else int(h["parent"]) for h in headers],
                    dtype="Int64",
                ),
                "created": pd.to_datetime(  # from an array: a list takes the slow path
                    np.array([float(h.get("created", 0)) for h in headers], dtype=np.float64),
                    unit="s",
                    utc=True,
                ),
                "author": [str(h.get("author", "")) for h in headers],
                "message": [str(h.get("message", "")) for h in headers],
                "rows_changed": [int(h.get("rows_changed", 0)) for h in headers],
                "action": [str(h.get("action", "")) for h in headers],
                "session": [str(h.get("session", "")) for h in headers],
            },
            columns=[*cols, "action", "session"],
        )
        return df

    def compact(self, *, progress: bool = True) -> dict[str, int]:
        """Rewrite the store's snapshots under the current policy; no revision changes.

        Old stores (and long histories) keep many full-size snapshots; compaction
        writes compressed ones where they save replay work (dense near the newest
        revision, log-spaced further back) and removes the rest, plus writes the
        history chunks ``history()`` reads. Every revision keeps exactly its
        weights, labels and columns. Safe beside writers in other processes (it
        holds the writer lock) and against a kill at any point (new snapshots are
        in place before old ones go). ``weightwidget compact STORE`` does the same.

        Returns
        -------
        dict
            ``snapshots_before``, ``snapshots_after``, ``snapshots_written``,
            ``bytes_before`` and ``bytes_after`` (of the snapshot files).
        """
        self._check_writable()
        with self._lock:
            self._store.upgrade()
            return self._store.compact(self._base_label_codes, progress=progress)

    def weights_at(self, rev: int) -> np.ndarray:
        """The weights as they were at revision ``rev`` (a new array)."""
        rev = _check_revision(rev)
        if rev == self._revision:
            return self._weights.copy()
        return self._state_at(rev).weights

    def labels_at(self, rev: int) -> np.ndarray:
        """The labels as they were at revision ``rev``, like :attr:`labels` (NaN: unlabelled)."""
        rev = _check_revision(rev)
        if rev == self._revision:
            return self.labels
        return _columns.label_values(
            _labels.derived_column(self._labels_view_at(rev), self._columns[self._label])
        )

    def _state_at(self, rev: int) -> State:
        newest = self._store.newest_number()
        if not 0 <= rev <= newest:
            raise ValueError(f"revision {rev} does not exist; revisions run from 0 to {newest}")
        if rev == self._revision:
            return self._state
        return self._store.state_at(rev, self._base_label_codes)

    def _labels_view_at(self, rev: int) -> _labels.LabelView:
        if rev == self._revision:
            return self._labels_view()
        state = self._state_at(rev)
        added = self._added_classes(rev) if state.labels is not None else ()
        return _labels.view(self._factorize_labels(), added, state.labels)

    def _codes_at(self, rev: int) -> np.ndarray:
        """Label codes at revision ``rev`` as indices into the *current* :attr:`classes`."""
        if rev == self._revision:
            return self.label_codes
        then = self._labels_view_at(rev)
        if len(then.classes) == len(self.classes):
            return then.codes
        to_now = np.append(pd.Index(self.classes).get_indexer(then.classes), -1)
        return to_now[then.codes].astype(np.int32)

    def diff(self, a: int, b: int | None = None) -> pd.DataFrame:
        """Rows whose weight or label differs between revisions ``a`` and ``b``.

        Parameters
        ----------
        a, b : int
            Revisions; ``b`` defaults to the current one.

        Returns
        -------
        pandas.DataFrame
            Index ``row``; columns ``label`` (the label at ``b``), ``weight_a``,
            ``weight_b``, ``label_a``, ``label_b`` (NaN where a row is unlabelled).
            ``attrs`` holds ``a``, ``b``, ``weights_changed`` and ``labels_changed``
            (row counts).
        """
        a = _check_revision(a)
        b = self._revision if b is None else _check_revision(b)
        sa, sb = self._state_at(a), self._state_at(b)
        wa, wb = sa.weights, sb.weights
        w_diff = wa != wb
        if sa.labels is None and sb.labels is None:
            l_diff = np.zeros(len(self), dtype=bool)
            la = lb = self._labels_view_at(b)
        else:
            la, lb = self._labels_view_at(a), self._labels_view_at(b)
            # store codes never change meaning: compare them, not the sorted codes
            ca = self._base_label_codes() if sa.labels is None else sa.labels
            cb = self._base_label_codes() if sb.labels is None else sb.labels
            l_diff = ca != cb
        ids = np.flatnonzero(w_diff | l_diff)
        base = self._columns[self._label]
        label_a = _columns.label_values(_labels.derived_column(la, base))
        label_b = _columns.label_values(_labels.derived_column(lb, base))
        out = pd.DataFrame(
            {
                "label": np.asarray(label_b)[ids],
                "weight_a": wa[ids],
                "weight_b": wb[ids],
                "label_a": np.asarray(label_a)[ids],
                "label_b": np.asarray(label_b)[ids],
            },
            index=pd.Index(ids, name="row"),
        )
        out.attrs.update(
            a=int(a),
            b=int(b),
            weights_changed=int(np.count_nonzero(w_diff)),
            labels_changed=int(np.count_nonzero(l_diff)),
        )
        return out

    def latest(self) -> WeightTable:
        """Move this table to the newest revision in its store, in place; returns ``self``.

        Picks up revisions (weights, labels, added columns) that other processes or
        other handles committed. It changes this object (it does not return a new
        one), so every view of it (a widget, a live sampler) follows. When nothing
        changed it costs a couple of file checks (the store's ``HEAD`` record),
        however long the history. A table opened at a past revision
        (``open(path, revision=r)``) stays there.
        """
        if self._pinned:
            return self
        with self._lock:  # the widget's comm handlers may run beside notebook code
            changed = self._refresh()
        if changed:
            self._notify()
        return self

    def _refresh(self) -> bool:
        """Bring the state to the store's newest good revision; True if it moved."""
        newest = self._store.newest_number()
        if newest == self._revision:
            return False
        with self._lock:
            return self._refresh_locked(newest)

    def _refresh_locked(self, newest: int | None = None) -> bool:
        if newest is None:
            newest = self._store.newest_number()
        if newest == self._revision:
            return False
        known = State(
            self._revision,
            self._next_weights(),
            None if self._state.labels is None else self._state.labels.copy(),
            self._state.columns,
        )
        try:
            state = self._store.head_state(self._base_label_codes, known=known, newest=newest)
        finally:
            self._state.weights.flags.writeable = False
        moved = state.revision != self._revision
        state.weights.flags.writeable = False
        before = self._state.labels
        self._state = state
        if moved:
            self._sync_labels(before)
        if self._load_columns():
            moved = True
        return moved

    # ------------------------------------------------------------------ columns
    def set_columns(
        self,
        columns: Mapping[str, Any],
        *,
        message: str | None = None,
        run: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> int:
        """Add or replace per-sample columns (e.g. a run's metrics), as one revision.

        Parameters
        ----------
        columns : mapping of str to array-like
            Each of length ``n_samples``; numbers, booleans or strings. The label
            column cannot be replaced.
        message : str, optional
            The revision's message.
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
            The new revision (it changes no weight; it adds the columns).
        """
        self._check_writable()
        if not columns:
            raise ValueError("set_columns needs at least one column")
        for key in columns:
            if not isinstance(key, str) or not key:
                raise TypeError(f"column names must be non-empty strings; got {key!r}")
            if key in RESERVED or key == self._label:
                raise ValueError(f"column name {key!r} is reserved; choose another name")
            if key in self._base_names:
                raise ValueError(f"{key!r} is a base data column and cannot be replaced")
        normal = _columns.normalise_columns(dict(columns), label=None, n_rows=len(self))
        for key, values in normal.items():
            if query.column_kind(values) == "image":
                raise ValueError(f"column {key!r}: added columns must be one-dimensional")
        extra: dict[str, Any] = {}
        if run is not None:
            extra.update(run=str(run), computed_at=self._revision, info=_jsonable(dict(info or {})))
        ref = self._store.write_column_file(_columns.encode_base(normal))
        extra["columns"] = {**ref, "names": list(normal)}
        auto = f"columns {', '.join(normal)}" + (f" of run {run}" if run is not None else "")

        def op(current: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
            return np.empty(0, dtype=np.int64), np.empty(0), auto

        try:
            return self._commit(op, message, action="columns", extra=extra, columns=normal)
        except BaseException:
            self._store.remove_column_file(ref)
            raise

    def runs(self) -> pd.DataFrame:
        """The runs that wrote columns to this table, oldest first.

        Returns
        -------
        pandas.DataFrame
            Columns ``run``, ``revision`` (the table revision the run was computed
            at), ``committed`` (the revision that added its columns), ``created``
            (UTC), ``author``, ``kind``, ``columns`` (the columns it wrote) and
            ``aggregates`` (a dict, e.g. weighted accuracy and loss).
        """
        records = list(self._legacy_runs)
        for rev in self._state.columns:
            header = self._store.header(rev)
            if "run" in header:
                records.append({**header, "committed": rev})
        rows = []
        for header in records:
            info = header.get("info") or {}
            rows.append(
                {
                    "run": header["run"],
                    "revision": int(header.get("computed_at", 0)),
                    "committed": header.get("committed"),
                    "created": pd.Timestamp(float(header.get("created", 0)), unit="s", tz="UTC"),
                    "author": header.get("author", ""),
                    "kind": info.get("kind", ""),
                    "columns": list(
                        header["columns"]["names"]
                        if isinstance(header.get("columns"), dict)
                        else header.get("columns", [])
                    ),
                    "aggregates": dict(info.get("aggregates") or {}),
                }
            )
        cols = [
            "run",
            "revision",
            "committed",
            "created",
            "author",
            "kind",
            "columns",
            "aggregates",
        ]
        out = pd.DataFrame(rows, columns=cols)
        out["committed"] = out["committed"].astype("Int64")
        return out

    def _load_columns(self) -> bool:
        """Merge the column sets of the current state that are not loaded yet."""
        changed = False
        for rev in self._state.columns:
            if rev in self._loaded_columns:
                continue
            header = self._store.header(rev)
            blob = self._store.read_column_file(header["columns"], rev)
            self._columns.update(_columns.decode_base(blob, {}, {"n_rows": len(self)}))
            self._loaded_columns.add(rev)
            changed = True
        if changed:
            self._columns_changed()
        return changed

    def _load_legacy_columns(self) -> None:
        """Column sets of format-1 stores (``columns/*.col`` files)."""
        for header, payload in self._store.read_legacy_columns():
            self._columns.update(_columns.decode_base(payload, {}, {"n_rows": len(self)}))
            if "run" in header:
                self._legacy_runs.append(header)
        self._columns_changed()

    def _columns_changed(self) -> None:
        self._columns_version += 1  # part of view.table_version: view caches follow

    # ------------------------------------------------------------------ summaries
    def class_balance(self, num_samples: int | None = None) -> pd.DataFrame:
        """Per-class counts and weighted shares, over the labelled rows.

        Unlabelled rows are left out (they never train); ``attrs`` says how many
        there are.

        Parameters
        ----------
        num_samples : int, optional
            Draws per epoch for ``expected_draws`` (default: the number of labelled
            rows with weight > 0).

        Returns
        -------
        pandas.DataFrame
            Indexed by class (every one of :attr:`classes`): ``count``,
            ``included`` (weight > 0), ``weight_sum``, ``share`` (count / labelled
            rows), ``effective_share`` (weight_sum / total weight of labelled rows)
            and ``expected_draws`` (``num_samples * effective_share``). ``attrs``:
            ``n_rows``, ``n_labelled``, ``n_unlabelled``, ``revision``.

        Raises
        ------
        ValueError
            When no labelled row has a weight > 0 (there is no distribution to draw
            from).
        """
        classes = self.classes
        counts, included, sums = view.class_aggregates(self)  # unlabelled rows left out
        n_unlabelled = self.n_unlabelled
        total = float(sums.sum())
        if total <= 0:
            raise ValueError(
                (
                    f"no labelled row has a weight > 0 ({n_unlabelled:,} of {len(self):,} rows "
                    "are unlabelled), so there is no distribution to describe; label some rows "
                    "with set_labels(...) or include labelled ones"
                )
                if n_unlabelled
                else "all weights are 0, so there is no distribution to describe; include some "
                "rows first, e.g. set_weights(None, 1) or revert(...)"
            )
        if num_samples is None:
            num_samples = int(included.sum())
        elif (
            isinstance(num_samples, bool)
            or not isinstance(num_samples, (int, np.integer))
            or num_samples <= 0
        ):
            raise ValueError(f"num_samples must be a positive integer; got {num_samples!r}")
        effective = sums / total
        out = pd.DataFrame(
            {
                "count": counts,
                "included": included,
                "weight_sum": sums,
                "share": counts / max(len(self) - n_unlabelled, 1),
                "effective_share": effective,
                "expected_draws": effective * num_samples,
            },
            index=pd.Index(classes, name=self._label),
        )
        out.attrs.update(
            n_rows=len(self),
            n_labelled=len(self) - n_unlabelled,
            n_unlabelled=n_unlabelled,
            revision=self._revision,
        )
        return out

    def plot_balance(
        self,
        ax: matplotlib.axes.Axes | None = None,
        compare_to: int | None = None,
        *,
        top: int | None = 20,
        log: bool = False,
        horizontal: bool | None = None,
    ) -> matplotlib.axes.Axes:
        """Bar chart of raw vs effective (weighted) share per class.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw (default: a new figure).
        compare_to : int, optional
            Also show the effective share at this earlier revision.
        top : int or None, default=20
            Draw the ``top`` largest classes and one "other (n classes)" bar for
            the rest; None draws every class.
        log : bool, default=False
            Log-scaled share axis (small classes stay visible beside large ones).
        horizontal : bool, optional
            Horizontal bars (class names on the left, readable when long). Default:
            horizontal when a class name is longer than 6 characters or more than
            12 bars are drawn.

        Returns
        -------
        matplotlib.axes.Axes

        See :func:`weightwidget.plots.plot_balance`.
        """
        from .plots import plot_balance

        return plot_balance(
            self, ax=ax, compare_to=compare_to, top=top, log=log, horizontal=horizontal
        )

    def effective_share_at(self, rev: int) -> np.ndarray:
        """Effective (weighted) share per class of :attr:`classes` at revision ``rev``.

        Over the rows labelled at ``rev`` (with that revision's labels).
        """
        w = self.weights_at(rev)
        codes = self._codes_at(_check_revision(rev))
        labelled = codes >= 0
        sums = np.bincount(codes[labelled], weights=w[labelled], minlength=len(self.classes))
        total = sums.sum()
        return sums / total if total > 0 else np.zeros_like(sums)

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        where: Where = None,
        columns: list[str] | None = None,
        format: str | None = None,
        include_excluded: bool = False,
    ) -> dict[str, Any]:
        """Write the curated rows to a Parquet or CSV file, with where they came from.

        One row per exported sample: ``row`` (its id in the dataset), the label
        column, ``weight``, then ``columns``. The table name, revision, store URL
        and classes go in the file's metadata (Parquet: the schema metadata key
        ``weightwidget``; CSV: a JSON file beside it, ``<path>.json``); read both
        back with :func:`weightwidget.read_export`.

        Parameters
        ----------
        path : str or path
            The file to write (replaced if it exists; written atomically).
        where : str, array-like of bool or int, slice or None, default=None
            Only these rows (see :meth:`mask`).
        columns : list of str, optional
            Data columns to include besides row, label and weight. Default: every
            column except image columns; ``[]`` for none.
        format : {"parquet", "csv"}, optional
            Default: from the suffix (``.csv`` is CSV), else Parquet.
        include_excluded : bool, default=False
            Also write excluded rows: weight 0 or unlabelled (never trained on).

        Returns
        -------
        dict
            The metadata written (``rows`` is the number of rows).

        See :func:`weightwidget.export.export`.
        """
        from .export import export

        return export(
            self,
            path,
            where=where,
            columns=columns,
            format=format,
            include_excluded=include_excluded,
        )

    # ------------------------------------------------------------------ exports
    @takes_options(SamplerOptions)
    def create_sampler(self, num_samples: int | None = None, **options: Any) -> Any:  # noqa: D417 ({options} documents them)
        """A ``torch.utils.data.Sampler`` drawing rows in proportion to their weights.

        The same as :func:`weightwidget.samplers.create_sampler` on this table; use
        it as ``DataLoader(dataset, sampler=table.create_sampler(seed=0))``.

        Parameters
        ----------
        {options}

        Returns
        -------
        weightwidget.samplers.WeightedTableSampler
        """
        from .samplers import create_sampler

        return create_sampler(self, num_samples, **options)

    def sample_weight(self, *, normalize: bool = False) -> np.ndarray:
        """Weights for Keras ``fit(sample_weight=...)``, in dataset order.

        Unlabelled rows get 0; ``normalize=True`` scales the rest to mean 1 over
        the included rows. See :func:`weightwidget.samplers.sample_weight`.
        """
        from ._sampling import sample_weight

        return sample_weight(self, normalize=normalize)

    @takes_options(TfDatasetOptions)
    def to_tf_dataset(self, features: Any, labels: Any = None, **options: Any) -> Any:  # noqa: D417 ({options} documents them)
        """A ``tf.data.Dataset`` built from the current weights.

        The same as :func:`weightwidget.tf.to_tf_dataset` on this table. Needs
        ``pip install "weightwidget[tf]"``.

        Parameters
        ----------
        features : array-like of shape (n_samples, ...), or dict / tuple of such
            Model inputs in the table's row order.
        labels : array-like of shape (n_samples, ...), default=None
            Targets; None means ``label_codes``.
        {options}

        Returns
        -------
        tf.data.Dataset
        """
        from .tf import to_tf_dataset

        return to_tf_dataset(self, features, labels, **options)

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

    # ---------------------------------------------------------------- labels (internals)
    def _factorize_labels(self) -> _columns.Labels:
        """Revision 0's labels: sorted classes and codes of the label column as ingested."""
        if self._base_labels is None:
            self._base_labels = _columns.label_encoding(self._columns[self._label])
        return self._base_labels

    def _base_label_codes(self) -> np.ndarray:
        """Revision 0's store codes (int32), for the store's replay of label changes."""
        return self._factorize_labels().codes.astype(np.int32)

    def _stored_codes(self) -> np.ndarray:
        """The current store codes (int32; do not modify)."""
        if self._state.labels is not None:
            return self._state.labels
        return self._base_label_codes()

    def _labels_view(self) -> _labels.LabelView:
        v = self._label_view
        if v is None:
            with self._lock:
                v = self._label_view = _labels.view(
                    self._factorize_labels(),
                    self._added_classes(self._revision),
                    self._state.labels,
                )
        return v

    def _current_label_column(self) -> Any:
        if self._state.labels is None:
            return self._columns[self._label]
        col = self._label_column
        if col is None:
            col = _labels.derived_column(self._labels_view(), self._columns[self._label])
            if isinstance(col, np.ndarray):
                col.flags.writeable = False
            self._label_column = col
        return col

    def _added_classes(self, rev: int) -> tuple[Any, ...]:
        """Classes added by label edits on the parent chain of revision ``rev``, in order."""
        known = self._added.get(rev)
        if known is not None:
            return known
        if rev == self._revision and self._state.labels is None:
            return ()  # classes come with label changes: no label change, no class added
        chain: list[dict[str, Any]] = []
        current: int | None = rev
        if not any(r < rev for r in self._added):  # from scratch: the history chunks
            self._store.headers(rev)
        while current is not None and current not in self._added:
            header = self._store.header(current)
            chain.append(header)
            parent = header.get("parent")
            current = None if parent is None else int(parent)
        start = () if current is None else self._added[current]
        first = len(self._factorize_labels().classes) + len(start)
        added = start + _labels.replay_added(
            chain[::-1], first, where=f"{self._store.url}/revisions"
        )
        if len(self._added) > 64:  # keep a few: the head's and its recent ancestors'
            for old in sorted(self._added)[:-8]:
                del self._added[old]
        self._added[rev] = added
        return added

    def _sync_labels(
        self, before: np.ndarray | None = None, *, changed: bool | None = None
    ) -> None:
        """After the state changed: drop the label view; maybe bump the column version.

        The version moves when the labels changed, so caches of the label column go;
        ``before`` is the previous state's store codes.
        """
        self._label_view = None
        self._label_column = None
        if changed is None:
            now = self._state.labels
            changed = not (
                (before is None and now is None)
                or (before is not None and now is not None and np.array_equal(before, now))
            )
        if changed:  # masks and sort orders of the label column are stale
            self._columns_changed()

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
@dataclass(frozen=True)
class _LabelEdit:
    """New store codes for rows ``ids`` (-1: unlabelled) and the classes they add."""

    ids: np.ndarray
    codes: np.ndarray
    added: tuple[Any, ...] = ()


def _label_array(value: Any, per_row: bool) -> np.ndarray:
    """Label values as a 1-D object array (one value when ``value`` is a scalar)."""
    if isinstance(value, (pd.Series, pd.Index)):
        value = value.to_numpy()
    if isinstance(value, pd.Categorical):
        value = np.asarray(value.astype(object))
    if not per_row:
        out = np.empty(1, dtype=object)
        out[0] = value.item() if isinstance(value, np.generic) else value
        return out
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"label values must be one-dimensional; got shape {arr.shape}")
    return arr


def _label_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    return repr(value) if isinstance(value, str) else str(value)


#: Other libraries' spellings of our options (3LC's ``Table.from_*`` among them).
_ALIASES = {"table_name": "name"}


def _refuse_options(unknown: dict[str, Any], method: str) -> None:
    """Refuse keywords a constructor does not take, pointing at ours."""
    if not unknown:
        return
    key = next(iter(unknown))
    ours = _ALIASES.get(key)
    if ours is not None:
        raise TypeError(
            f"{method}() takes {ours}=, not {key}= (the spelling of another library): "
            f"did you mean {ours}={unknown[key]!r}?"
        )
    known = ["label", "name", "store", "weights", "missing_label", "if_exists", "author"]
    raise TypeError(
        f"{method}() got an unexpected keyword argument {key!r}{did_you_mean(key, known)}"
    )


def _extra_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Keyword columns of ``from_arrays`` / ``from_torch_dataset``: ``label`` is taken."""
    if "label" in columns:
        raise ValueError(
            "'label' is the name of the label column (from labels=); give the extra column "
            "another name"
        )
    for key, ours in _ALIASES.items():
        if key in columns and isinstance(columns[key], str):
            raise TypeError(
                f"{key}={columns[key]!r} would become a column of one string; weightwidget "
                f"calls this option {ours}=: did you mean {ours}={columns[key]!r}? (To add a "
                f"column named {key!r}, use from_pandas.)"
            )
    return columns


def _legacy_default_store(
    columns: dict[str, Any], kinds: dict[str, str], weights: np.ndarray
) -> str | None:
    """The default folder an unnamed table got under an older fingerprint method.

    Only the methods of existing default folders with as many rows are tried
    (read from their ``meta.json``), since an old method may hash text per
    distinct value.
    """
    root = Path(DEFAULT_STORE_DIR)
    if not root.is_dir():
        return None
    methods = set()
    for folder in root.iterdir():
        if folder.name.startswith("table-"):
            try:
                meta = json.loads((folder / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("n_rows") == len(weights):
                methods.add(int(meta.get("fingerprint_method", 1)))
    for method in sorted(methods - {_columns.FINGERPRINT_METHOD}, reverse=True):
        old = _columns.fingerprint_by_method(method, columns, kinds, weights)
        path = root / f"table-{old[:12]}"
        if path.exists():
            return str(path)
    return None


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


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into plain JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


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
