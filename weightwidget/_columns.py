"""Columns: user data -> typed arrays -> encoded base files, and back.

One way through, each column typed once:

1. :func:`normalise` turns every user column into one of four kinds (``numeric``,
   ``bool``, ``string``, ``image``) and refuses what the table cannot represent,
   naming the column. Numbers and booleans become numpy arrays, and same-shape
   arrays per row one ``(n, h, w[, c])`` image array. Text stays Arrow (no
   per-row Python strings) in one of two representations that
   :mod:`weightwidget._text` chooses from a sample: a ``pandas.Categorical``
   over Arrow-backed categories when few values are distinct (always for the
   label column), pandas' Arrow-backed string array when most are.
2. :func:`column_hashes` fingerprints the typed arrays by hashing their buffers
   (text: the same hash for either representation).
3. :func:`encode_base_files` encodes them with pyarrow into the files the store
   writes as they are (it never looks inside): ``columns.parquet`` (numbers,
   booleans, text codes, plain text), one ``text-<i>.parquet`` dictionary per
   dictionary-encoded text column and one ``tensor-<i>.npy`` per image column.
   Files are named by position, never by user text; names live in JSON inside
   the parquet metadata.
4. :func:`decode_base` reads them back, again without per-row Python objects.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import _text

__all__ = [
    "KINDS",
    "RESERVED",
    "Labels",
    "Normalised",
    "column_kind",
    "decode_base",
    "encode_base_files",
    "label_encoding",
    "normalise",
]

KINDS = ("numeric", "bool", "string", "image")
#: Names the table itself uses: the weights and the row ids (in filters, in the
#: widget's columns, in ``WeightTable.column``). A data column may not take them.
RESERVED = ("weight", "row")
#: How :func:`fingerprint` identifies data. Stores written before it was recorded
#: in ``meta.json`` used method 1 (:func:`legacy_fingerprint`); method 2 hashed a
#: text column's dictionary and codes (:func:`method2_column_hash`), method 3 its
#: rows' text, the same whichever representation holds it.
FINGERPRINT_METHOD = 3
_INT64_MAX = float(2**63)


# --------------------------------------------------------------------------- kinds
def column_kind(values: Any) -> str:
    """Classify a column: ``"numeric"``, ``"bool"``, ``"string"`` or ``"image"``."""
    if _text.is_text(values):
        return "string"
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim >= 2:
        return "image"
    if arr.dtype == bool:
        return "bool"
    if arr.dtype.kind in "iuf":
        return "numeric"
    return "string"


# --------------------------------------------------------------------------- names
def check_name(key: Any, *, what: str = "column") -> str:
    """Refuse a column name the table cannot hold or the filter language cannot spell."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"{what} names must be non-empty strings; got {key!r}")
    if "`" in key:
        raise ValueError(
            f"{what} name {key!r} contains a backtick, which the filter language uses to "
            "quote column names; rename it"
        )
    bad = next((ch for ch in key if unicodedata.category(ch) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(
            f"{what} name {key!r} contains the control character {bad!r}, which cannot be "
            "typed in a filter or shown in the widget; rename it"
        )
    if key in RESERVED:
        raise ValueError(
            f"{what} name {key!r} is reserved for the table's "
            f"{'weights' if key == 'weight' else 'row ids'}; rename it"
            + (" (or pass weights='weight' to start from it)" if key == "weight" else "")
        )
    return key


def frame_names(columns: Any) -> list[str]:
    """A DataFrame's column names as strings, refusing duplicates (``1`` and ``"1"`` too)."""
    names = [c if isinstance(c, str) else str(c) for c in columns]
    seen: dict[str, Any] = {}
    for original, name in zip(columns, names, strict=True):
        if name in seen:
            first = seen[name]
            how = "twice" if first == original else f"as {first!r} and {original!r}"
            raise ValueError(
                f"the DataFrame has the column {name!r} {how}; column names must be unique "
                "(as strings): rename or drop one, e.g. df.columns = [...]"
            )
        seen[name] = original
    return names


# --------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Labels:
    """A label column normalised once: sorted classes and each row's index into them.

    ``codes`` is -1 where a label is missing (the row is unlabelled); ``classes``
    never holds a missing marker.
    """

    classes: np.ndarray
    codes: np.ndarray

    @property
    def n_missing(self) -> int:
        """Rows without a label."""
        return int(np.count_nonzero(self.codes < 0))


@dataclass
class Normalised:
    """Typed columns (label first), their kinds, and the label encoding."""

    columns: dict[str, Any]
    kinds: dict[str, str]
    labels: Labels | None


def small_int(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    top = int(codes.max()) if codes.size else 0
    dtype = np.int8 if top < 127 else np.int16 if top < 32767 else np.int32
    return codes.astype(dtype)


def factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes and each row's class index (smallest int dtype; -1 if missing)."""
    if isinstance(values, pd.Categorical):
        codes = np.asarray(values.codes)
        k = len(values.categories)
        present = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=k))
        cats = values.categories.take(present)
        if cats.dtype.kind in "iuf":
            order = np.argsort(np.asarray(cats), kind="stable")
        else:
            order = np.asarray(_sort_indices(_arrow_strings(cats)))
        remap = np.full(k + 1, -1, dtype=np.int64)  # slot k: code -1 stays -1
        remap[present[order]] = np.arange(len(present))
        classes = np.asarray(cats.take(order), dtype=object)
        return classes, small_int(remap[codes])
    arr = np.asarray(values)
    if arr.dtype.kind in "iub" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < 1 << 22:  # small integer range: a lookup table, no hashing or sorting
            counts = np.zeros(hi - lo + 1, dtype=np.int64)
            step = 1 << 18  # in blocks, so no full-size temporary
            for i in range(0, arr.size, step):
                block = arr[i : i + step].astype(np.int64) - lo
                counts += np.bincount(block, minlength=hi - lo + 1)
            present = np.flatnonzero(counts)
            dtype = small_int(np.array([len(present)])).dtype
            lookup = np.full(hi - lo + 1, -1, dtype=dtype)
            lookup[present] = np.arange(len(present))
            codes = np.empty(arr.size, dtype=dtype)
            for i in range(0, arr.size, step):
                codes[i : i + step] = lookup[arr[i : i + step].astype(np.int64) - lo]
            return (present + lo).astype(arr.dtype), codes
    codes, uniques = pd.factorize(arr, sort=True, use_na_sentinel=True)
    return np.asarray(uniques), small_int(codes)


def label_encoding(values: Any) -> Labels:
    """The :class:`Labels` of a normalised label column (what revision 0 holds).

    A float column whose labelled values are all whole numbers (the float only
    makes room for NaN, the missing marker) gets integer classes: ``[0, 1, 2]``,
    not ``[0.0, 1.0, 2.0]``. The codes are :func:`factorize`'s either way.
    """
    classes, codes = factorize(values)
    if (
        classes.dtype.kind == "f"
        and bool(np.all(np.mod(classes, 1) == 0))
        and (classes.size == 0 or float(np.abs(classes).max()) < _INT64_MAX)
    ):
        classes = classes.astype(np.int64)
    return Labels(classes, codes)


def label_values(values: Any) -> Any:
    if isinstance(values, pd.Categorical):
        return np.asarray(values.astype(object))
    return values


def _apply_missing_label(name: str, values: Any, kind: str, missing_label: Any) -> Any:
    """The label column with every ``missing_label`` value turned into a missing one."""
    if kind == "string":
        if not isinstance(missing_label, str):
            raise TypeError(
                f"label column {name!r} holds text, so missing_label must be a string; got "
                f"missing_label={missing_label!r} (e.g. missing_label={str(missing_label)!r})"
            )
        at = values.categories.get_indexer([missing_label])[0]
        if at < 0:
            return values
        k = len(values.categories)
        remap = np.arange(-1, k, dtype=np.int64)  # slot 0 for code -1
        remap[at + 1] = -1
        remap[at + 2 :] -= 1
        codes = remap[np.asarray(values.codes, dtype=np.int64) + 1]
        keep = np.ones(k, dtype=bool)
        keep[at] = False
        strings = _arrow_strings(values.categories).filter(keep)
        return make_categorical(small_int(codes) if codes.size else codes, strings)
    if kind != "numeric":
        raise TypeError(
            f"missing_label works on numeric and text label columns; label column {name!r} "
            f"is {kind}"
        )
    if isinstance(missing_label, (bool, np.bool_)) or not isinstance(
        missing_label, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"label column {name!r} holds numbers, so missing_label must be a number; got "
            f"missing_label={missing_label!r}"
        )
    if np.isnan(missing_label):  # NaN is a missing label anyway
        return values
    hit = values == missing_label
    if not hit.any():
        return values
    if values.dtype.kind in "iu":
        rest = values[~hit]
        if rest.size and float(np.abs(rest).max()) >= 2**53:
            raise ValueError(
                f"label column {name!r} holds integers beyond 2**53, which a column with "
                "missing labels (float, NaN for missing) cannot hold exactly; convert the "
                "labels to strings and pass missing_label as a string"
            )
    out = values.astype(np.float64)
    out[hit] = np.nan
    return out


def encode_labels(
    name: str, values: Any, kind: str, *, missing_label: Any = None
) -> tuple[Any, Labels]:
    """Check a label column and encode it once as sorted classes + codes.

    Returns the (possibly retyped) column and its :class:`Labels`. Missing labels
    (None, NaN, ``pd.NA``, or the value ``missing_label``) mark unlabelled rows:
    they get code -1, a numeric column holds NaN there (it becomes float), a text
    column code -1 in its Categorical.
    """
    if kind == "image":
        raise ValueError(
            f"label column {name!r} must hold one value per sample; it has shape {np.shape(values)}"
        )
    if missing_label is not None:
        values = _apply_missing_label(name, values, kind, missing_label)
        kind = column_kind(values)
    if kind == "numeric" and values.dtype.kind == "f":
        missing = np.isnan(values)
        infinite = np.isinf(values)
        if infinite.any():
            first = int(np.argmax(infinite))
            raise ValueError(
                f"label column {name!r} has infinite values ({values[first]} at row {first}"
                f"{f', and {int(infinite.sum()) - 1} more' if infinite.sum() > 1 else ''}); "
                "labels are class ids: map them to finite numbers or strings (NaN marks a "
                "missing label)"
            )
        labelled = values[~missing] if missing.any() else values
        if (
            not missing.any()
            and np.all(np.mod(labelled, 1) == 0)
            and (labelled.size == 0 or np.abs(labelled).max() < _INT64_MAX)
        ):
            values = values.astype(np.int64)
    return values, label_encoding(values)


# --------------------------------------------------------------------------- normalising
def normalise(
    data: dict[str, Any],
    *,
    label: str | None,
    n_rows: int | None = None,
    missing_label: Any = None,
) -> Normalised:
    """Type every column once and encode the label column.

    Parameters
    ----------
    data : dict of str to array-like
        The user's columns (label first when there is one).
    label : str or None
        Which column holds the class labels.
    n_rows : int, optional
        The length every column must have (default: the first column's).
    missing_label : scalar, optional
        A label value meaning "unlabelled" (e.g. -1), besides None/NaN/``pd.NA``.

    Raises
    ------
    ValueError
        A reserved, unspellable or duplicate name, columns of different lengths,
        an empty table, or values the table cannot represent (naming the column).
    TypeError
        A non-string name or an unsupported dtype.
    """
    columns: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    first = "the table"  # who set n_rows, for the error below
    for key in data:
        check_name(key, what="label column" if key == label else "column")
    # text first: its encoder's working memory is given back before the numbers are copied
    for key in sorted(data, key=lambda k: _plain_numbers(data[k])):
        values = data[key]
        # labels are classes: always a dictionary (codes), whatever their count
        out, kind = normalise_one(key, values, dictionary=True if key == label else None)
        if n_rows is None:
            n_rows, first = len(out), repr(key)
        elif len(out) != n_rows:
            raise ValueError(
                f"column {key!r} has {len(out)} rows but {first} has {n_rows}; "
                "all columns need one value per sample"
            )
        columns[key], kinds[key] = out, kind
    if n_rows == 0:
        raise ValueError("the table is empty: the data has 0 rows")
    columns = {key: columns[key] for key in data}  # the user's order
    kinds = {key: kinds[key] for key in data}
    labels = None
    if label is not None:
        columns[label], labels = encode_labels(
            label, columns[label], kinds[label], missing_label=missing_label
        )
        kinds[label] = column_kind(columns[label])
    return Normalised(columns, kinds, labels)


def _plain_numbers(values: Any) -> bool:
    dtype = getattr(values, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind in "iufb"


def normalise_columns(
    data: dict[str, Any], *, label: str | None, n_rows: int | None = None
) -> dict[str, Any]:
    """The typed columns of :func:`normalise` (for columns added later)."""
    return normalise(data, label=label, n_rows=n_rows).columns


def normalise_one(key: str, values: Any, *, dictionary: bool | None = None) -> tuple[Any, str]:
    """One user column as a typed array and its kind.

    ``dictionary`` forces a text column's representation (see :func:`text_column`).
    """
    import pyarrow as pa

    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        values = values.detach().cpu().numpy()
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pd.Series(pd.array(values, dtype=pd.ArrowDtype(values.type)), copy=False)
    if isinstance(values, pd.Index):
        values = pd.Series(values, copy=False)
    if isinstance(values, pd.Series):
        return _series(key, values, dictionary)
    if isinstance(values, pd.Categorical):
        return _categorical(values)
    if (
        isinstance(values, (list, tuple))
        and values
        and hasattr(values[0], "size")
        and hasattr(values[0], "mode")
    ):  # PIL images
        values = [np.asarray(v) for v in values]
    if isinstance(values, (list, tuple)):
        values = _object_array(values)
    arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    if arr.ndim == 0:
        raise ValueError(f"column {key!r} must be an array, one value per sample")
    if arr.dtype == object:
        return _objects(key, arr, dictionary)
    if arr.dtype.kind in "US":
        _check_1d(key, arr)
        strings = pa.array(arr.astype(str), type=pa.large_string())
        return text_column(strings, dictionary=dictionary), "string"
    if arr.dtype.kind not in "iufb":
        raise TypeError(
            f"column {key!r} has unsupported dtype {arr.dtype}; the table holds numbers, "
            "booleans, text and images"
        )
    return _numeric_array(key, arr, copy=True)


def _object_array(values: list[Any] | tuple[Any, ...]) -> np.ndarray:
    """A 1-D object array of a list, keeping per-row arrays whole (no broadcasting)."""
    if values and isinstance(values[0], (np.ndarray, list, tuple)):
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):  # Python objects already: one slot each
            out[i] = v
        return out
    return np.asarray(values)


def _check_1d(key: str, arr: np.ndarray) -> None:
    if arr.ndim != 1:
        raise ValueError(
            f"column {key!r} has shape {arr.shape}; text columns hold one string per sample"
        )


def _numeric_array(key: str, arr: np.ndarray, *, copy: bool) -> tuple[np.ndarray, str]:
    if arr.ndim == 1:
        out = np.array(arr, copy=True) if copy else np.ascontiguousarray(arr)
        return out, "bool" if out.dtype == bool else "numeric"
    if arr.ndim == 2:
        raise ValueError(
            f"column {key!r} has shape {arr.shape}: a vector of {arr.shape[1]} values per "
            "sample (an embedding?). The table holds one value or one image per sample: "
            f"keep the vectors beside the table, or split them into columns "
            f"({key}_0 ... {key}_{arr.shape[1] - 1})"
        )
    if arr.ndim > 4 or (arr.ndim == 4 and arr.shape[3] > 4):
        raise ValueError(
            f"column {key!r} has shape {arr.shape}; image columns have shape (n, h, w) or "
            "(n, h, w, c) with at most 4 channels"
        )
    return np.ascontiguousarray(arr).copy() if copy else np.ascontiguousarray(arr), "image"


def _series(key: str, s: pd.Series, dictionary: bool | None = None) -> tuple[Any, str]:
    import pyarrow as pa

    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _categorical(s.array)
    if isinstance(dtype, np.dtype) and dtype.kind in "iufb":
        return _numeric_array(key, s.to_numpy(), copy=True)  # the frame may change later
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return _objects(key, s.to_numpy(), dictionary)
    if _is_text(dtype):
        # Arrow-backed (pandas' default str, string[pyarrow], ArrowDtype) or python strings
        return text_column(pa.array(s.array), dictionary=dictionary), "string"
    arrow_bool = isinstance(dtype, pd.ArrowDtype) and pa.types.is_boolean(dtype.pyarrow_dtype)
    if dtype.kind == "b" or arrow_bool:
        if s.hasnans:
            _refuse_nullable_bool(key, s.isna().to_numpy())
        return s.to_numpy(dtype=bool), "bool"
    if dtype.kind in "iuf":  # nullable ints/floats (Int64, Float32, int64[pyarrow], ...)
        if s.hasnans:
            return s.to_numpy(dtype=np.float64, na_value=np.nan), "numeric"
        return np.array(s.to_numpy(dtype=np.dtype(dtype.numpy_dtype)), copy=True), "numeric"
    # datetimes, periods, intervals, ...: shown and filtered as their text ("NaT" too)
    strings = s.astype(str).to_numpy(dtype=object)
    strings = pa.array(strings, type=pa.large_string(), from_pandas=True)
    return text_column(strings, dictionary=dictionary), "string"


def _is_text(dtype: Any) -> bool:
    import pyarrow as pa

    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )


def _refuse_nullable_bool(key: str, missing: np.ndarray) -> None:
    raise ValueError(
        f"column {key!r} is boolean with {int(missing.sum())} missing value(s) (first at row "
        f"{int(np.argmax(missing))}); the table's boolean columns cannot hold missing values: "
        f"fill them (e.g. df[{key!r}].fillna(False)) or convert the column to float or text"
    )


def _objects(key: str, arr: np.ndarray, dictionary: bool | None = None) -> tuple[Any, str]:
    """An object column: text, numbers, booleans, or one array/image per row."""
    import pyarrow as pa

    _check_1d(key, arr)
    inferred = pd.api.types.infer_dtype(arr, skipna=True)
    if inferred in ("string", "empty"):
        strings = pa.array(arr, type=pa.large_string(), from_pandas=True)
        return text_column(strings, dictionary=dictionary), "string"
    if inferred == "boolean":
        missing = pd.isna(arr)
        if missing.any():
            _refuse_nullable_bool(key, missing)
        return arr.astype(bool), "bool"
    if inferred in ("integer", "mixed-integer-float", "floating", "decimal"):
        try:
            converted = pa.array(arr, from_pandas=True)
        except (OverflowError, pa.ArrowInvalid) as exc:
            raise ValueError(
                f"column {key!r} holds integers beyond 64 bits (e.g. "
                f"{next(v for v in arr if isinstance(v, int) and abs(v) >= 2**63)}); the "
                "table stores 64-bit numbers: convert them to strings if they are ids"
            ) from exc
        except pa.ArrowTypeError:
            converted = None
        if converted is not None and (
            pa.types.is_integer(converted.type)
            or pa.types.is_floating(converted.type)
            or pa.types.is_decimal(converted.type)
        ):
            # float64 like before, so stores made from object columns keep their fingerprint
            as_float = converted.cast(pa.float64(), safe=False)
            return as_float.to_numpy(zero_copy_only=False), "numeric"
    first = next((v for v in arr if v is not None), None)
    if isinstance(first, (np.ndarray, list, tuple)) or hasattr(first, "mode"):
        try:
            stacked = np.stack([np.asarray(v) for v in arr])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"column {key!r} holds arrays of different shapes (or missing ones); images "
                "must share one shape"
            ) from exc
        if stacked.dtype.kind not in "iufb":
            raise TypeError(f"column {key!r} holds arrays of unsupported dtype {stacked.dtype}")
        return _numeric_array(key, stacked, copy=False)
    # mixed types: each value's text (Python objects already; one C-level pass)
    missing = pd.isna(arr)
    strings = pd.Series(arr, dtype=object).astype(str).to_numpy(dtype=object)
    strings[missing] = None
    strings = pa.array(strings, type=pa.large_string(), from_pandas=True)
    return text_column(strings, dictionary=dictionary), "string"


def _categorical(values: pd.Categorical) -> tuple[Any, str]:
    cats = values.categories
    codes = np.asarray(values.codes)
    if cats.dtype.kind in "iuf":
        if (codes < 0).any():
            return np.where(codes < 0, np.nan, np.asarray(cats, dtype=np.float64)[codes]), "numeric"
        return np.asarray(cats)[codes], "numeric"
    if not _is_text(cats.dtype):
        cats = cats.astype(str)
    return make_categorical(codes, _arrow_strings(cats)), "string"


# --------------------------------------------------------------------------- text
def _arrow_strings(index: pd.Index) -> Any:
    """The categories of a text column as one pyarrow (large_)string array."""
    import pyarrow as pa

    arr = (
        pa.array(index.array)
        if _is_text(index.dtype)
        else pa.array(np.asarray(index, dtype=object), type=pa.string())
    )
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _sort_indices(strings: Any) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.array_sort_indices(strings).to_numpy()


def make_categorical(codes: np.ndarray, strings: Any) -> pd.Categorical:
    """A Categorical over Arrow-backed categories (``strings`` distinct, no nulls)."""
    return _text.categorical(codes, strings)


def text_column(strings: Any, *, dictionary: bool | None = None) -> Any:
    """A pyarrow string column as a Categorical or a plain Arrow-backed string array.

    :func:`weightwidget._text.wants_dictionary` decides from a sample unless
    ``dictionary`` says; the encoder's working memory is given back before the
    next column.
    """
    return _text.encode(strings, dictionary=dictionary)


# --------------------------------------------------------------------------- fingerprints
def _hasher() -> Any:
    # SHA-256 runs on the CPU's SHA extensions: about 3x blake2b's speed here, and
    # hashing the buffers is a tenth of a build. Identity, not security.
    return hashlib.sha256()


def array_hash(values: np.ndarray, *, method: int = FINGERPRINT_METHOD) -> str:
    """Hash of an array's dtype, shape and bytes (16 hex digits)."""
    h = hashlib.blake2b(digest_size=8) if method == 1 else _hasher()
    arr = np.ascontiguousarray(values)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()[:16]


def column_hash(values: Any, kind: str, *, method: int = FINGERPRINT_METHOD) -> str:
    """Hash of one typed column, from its buffers (text: its rows' lengths and bytes).

    A text column hashes the same as a Categorical or as plain strings, so the
    representation the sample chose never changes a table's identity.
    """
    if kind != "string":
        return array_hash(values)
    if method == 2:
        return method2_column_hash(values)
    h = _hasher()
    _text.as_text(values).hash_into(h)
    return h.hexdigest()[:16]


def method2_column_hash(values: Any) -> str:
    """Method 2's text hash: the dictionary's bytes, then the int32 codes.

    Only for reusing a store of that method; plain text is dictionary-encoded
    for it (in first-appearance order, as ingestion then did).
    """
    import pyarrow as pa

    if not isinstance(values, pd.Categorical):
        values = _text.dictionary_encode(_text.as_text(values).arrow())
    strings = _arrow_strings(values.categories)
    arr = strings.cast(pa.large_string()) if pa.types.is_string(strings.type) else strings
    offsets, data = _text._buffers(arr)
    h = _hasher()
    h.update(b"text")
    h.update(memoryview(np.ascontiguousarray(offsets)).cast("B"))
    h.update(data)
    h.update(memoryview(np.ascontiguousarray(values.codes, dtype=np.int32)).cast("B"))
    return h.hexdigest()[:16]


def column_hashes(
    columns: dict[str, Any], kinds: dict[str, str], *, method: int = FINGERPRINT_METHOD
) -> dict[str, str]:
    return {key: column_hash(values, kinds[key], method=method) for key, values in columns.items()}


def fingerprint(
    hashes: dict[str, str], weights_hash: str, *, method: int = FINGERPRINT_METHOD
) -> str:
    """The data's identity: every column's name and hash, in order, and the starting weights."""
    text = "".join(f"{json.dumps(k)}={v};" for k, v in hashes.items()) + f"weights={weights_hash}"
    return hashlib.blake2b(f"v{method};{text}".encode(), digest_size=8).hexdigest()


def fingerprint_by_method(
    method: int, columns: dict[str, Any], kinds: dict[str, str], weights: np.ndarray
) -> str:
    """The fingerprint the data had under ``method`` (1, 2 or today's)."""
    if method == 1:
        return legacy_fingerprint(columns, kinds, weights)[0]
    hashes = column_hashes(columns, kinds, method=method)
    return fingerprint(hashes, array_hash(weights), method=method)


def stored_fingerprint(
    meta: dict[str, Any],
    columns: dict[str, Any],
    kinds: dict[str, str],
    weights: np.ndarray,
    hashes: dict[str, str],
    fingerprint_now: str,
) -> tuple[bool, dict[str, str]]:
    """Whether the data is what a store was made from, by the store's own method.

    Returns the verdict and the column hashes by that method (for
    :func:`describe_mismatch`). ``hashes`` and ``fingerprint_now`` are today's.
    """
    method = meta.get("fingerprint_method")
    if method == FINGERPRINT_METHOD:
        return meta.get("fingerprint") == fingerprint_now, hashes
    if method == 2:
        old_hashes = column_hashes(columns, kinds, method=2)
        return meta.get("fingerprint") == fingerprint_by_method(
            2, columns, kinds, weights
        ), old_hashes
    # a store written before fingerprints named their method
    old, old_hashes = legacy_fingerprint(columns, kinds, weights)
    return meta.get("fingerprint") == old, old_hashes


def legacy_column_hash(values: Any, kind: str) -> str:
    """Method 1 (stores written before the method was recorded): text hashed per value.

    Computed from the categories (one hash per distinct string, then taken by code),
    only when reopening such a store.
    """
    if kind != "string":
        return array_hash(values, method=1)
    if not isinstance(values, pd.Categorical):
        values = _text.dictionary_encode(_text.as_text(values).arrow())
    cats = np.asarray(values.categories, dtype=object)
    per_cat = pd.util.hash_array(cats) if len(cats) else np.empty(0, dtype=np.uint64)
    codes = np.asarray(values.codes)
    hashed = np.append(per_cat, np.uint64(np.iinfo(np.uint64).max))[codes]  # missing: u8max
    h = hashlib.blake2b(digest_size=8)
    h.update(b"cat")
    h.update(hashed.tobytes())
    return h.hexdigest()


def legacy_fingerprint(
    columns: dict[str, Any], kinds: dict[str, str], weights: np.ndarray
) -> tuple[str, dict[str, str]]:
    hashes = {k: legacy_column_hash(v, kinds[k]) for k, v in columns.items()}
    parts = {**hashes, "(starting weights)": array_hash(weights, method=1)}
    text = "".join(f"{k}={v};" for k, v in parts.items())
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), hashes


def describe_mismatch(
    meta: dict[str, Any], columns: dict[str, Any], hashes: dict[str, str], label: str
) -> str:
    n_new = len(columns[label])
    if int(meta.get("n_rows", -1)) != n_new:
        return f"it has {meta.get('n_rows')} rows, the data given has {n_new}"
    old = {c["name"]: c["hash"] for c in meta.get("columns", [])}
    missing = [k for k in old if k not in columns]
    added = [k for k in columns if k not in old]
    if missing or added:
        parts = []
        if added:
            parts.append(f"new columns {', '.join(map(repr, added))}")
        if missing:
            parts.append(f"columns missing from the data: {', '.join(map(repr, missing))}")
        return "; ".join(parts)
    differ = [k for k in columns if old.get(k) != hashes[k]]
    if differ:
        return f"the values of column(s) {', '.join(map(repr, differ))} differ"
    if meta.get("label") != label:
        return f"its label column is {meta.get('label')!r}, not {label!r}"
    if list(old) != list(columns):
        return "its columns are in another order"
    return "the starting weights differ"


# --------------------------------------------------------------------------- encoding
def release_arrow_memory() -> None:
    """Hand memory pyarrow's allocator keeps for reuse back to the system.

    mimalloc keeps freed pages; after a one-off encode of the base columns that
    would otherwise stay in the process as several times the columns' size.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def npy_bytes(array: np.ndarray) -> bytes:
    """Serialise an array to .npy bytes (no pickle)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def npy_load(blob: bytes) -> np.ndarray:
    """Inverse of :func:`npy_bytes`."""
    return np.load(io.BytesIO(blob), allow_pickle=False)


def _write_npy(array: np.ndarray, sink: Any) -> None:
    np.save(sink, np.ascontiguousarray(array), allow_pickle=False)


def write_parquet(table: Any, sink: Any, *, dictionary: list[str] | None = None) -> None:
    import pyarrow.parquet as pq

    # Row groups bound the encoder's working memory. Parquet's own dictionary
    # encoding is off: text arrives as codes plus a separate dictionary (a
    # dictionary-typed column is re-encoded per row group: quadratic in practice),
    # and a dictionary of a million distinct floats is a large hash table for nothing.
    pq.write_table(
        table,
        sink,
        compression="lz4",  # 2.5x faster to write than zstd, files 25% larger
        row_group_size=1 << 20,  # ~10-20 MB of columns per group: bounded, few groups
        use_dictionary=dictionary or False,
    )


def encode_base_files(
    columns: dict[str, Any], kinds: dict[str, str]
) -> dict[str, bytes | Callable[[Any], None]]:
    """The base files of a new store, by path under ``base/``, as streaming writers.

    ``columns.parquet`` holds numbers, booleans, text codes (int32, -1 for
    missing) and plain text (large_string) in fields ``c<i>``; its metadata
    ``weightwidget.layout`` lists each column's name, kind, field and files as
    JSON. Text dictionaries go to ``text-<i>.parquet`` and images to
    ``tensor-<i>.npy``.
    """
    import pyarrow as pa

    arrays, fields, layout = [], [], []
    files: dict[str, bytes | Callable[[Any], None]] = {}
    for i, (name, values) in enumerate(columns.items()):
        kind = kinds[name]
        entry: dict[str, Any] = {"name": name, "kind": kind}
        if kind == "image":
            entry["file"] = f"tensor-{i}.npy"
            files[entry["file"]] = functools.partial(_write_npy, values)
        elif kind == "string" and isinstance(values, pd.Categorical):
            entry["field"] = f"c{i}"
            entry["dictionary"] = f"text-{i}.parquet"
            entry["text"] = "dictionary"  # chosen: kept a dictionary when opened
            arrays.append(pa.array(np.asarray(values.codes, dtype=np.int32)))
            fields.append(entry["field"])
            strings = pa.table({"value": _arrow_strings(values.categories)})
            files[entry["dictionary"]] = functools.partial(write_parquet, strings)
        elif kind == "string":  # plain text: the strings themselves, written once
            entry["field"] = f"c{i}"
            arrays.append(_text.as_text(values).arrow())
            fields.append(entry["field"])
        else:
            entry["field"] = f"c{i}"
            arrays.append(pa.array(values))  # numpy numbers: wrapped without a copy
            fields.append(entry["field"])
        layout.append(entry)
    table = pa.table(arrays, names=fields) if arrays else pa.table({})
    table = table.replace_schema_metadata({"weightwidget.layout": json.dumps(layout)})
    files["columns.parquet"] = functools.partial(write_parquet, table)
    return files


def encode_base(columns: dict[str, Any]) -> bytes:
    """One parquet file of 1-D columns (a set of columns added later).

    A Categorical stays a dictionary-typed column here (one file per set),
    written as one row group so its dictionary is encoded once; plain text
    stays a string column.
    """
    import pyarrow as pa

    arrays, fields, layout, text = [], [], [], []
    for i, (name, values) in enumerate(columns.items()):
        kind = column_kind(values)
        field = f"c{i}"
        if kind == "image":
            raise ValueError(f"column {name!r}: added columns must be one-dimensional")
        entry: dict[str, Any] = {"name": name, "kind": kind, "field": field}
        if kind == "string" and not isinstance(values, pd.Categorical):
            arrays.append(_text.as_text(values).arrow())  # plain text stays plain
        elif kind == "string":
            entry["text"] = "dictionary"
            codes = np.asarray(values.codes, dtype=np.int32)
            arrays.append(
                pa.DictionaryArray.from_arrays(
                    pa.array(codes, mask=codes < 0), _arrow_strings(values.categories)
                )
            )
            text.append(field)
        else:
            arrays.append(pa.array(values))
        fields.append(field)
        layout.append(entry)
    table = pa.table(arrays, names=fields)
    table = table.replace_schema_metadata({"weightwidget.layout": json.dumps(layout)})
    buf = io.BytesIO()
    import pyarrow.parquet as pq

    pq.write_table(
        table, buf, compression="zstd", row_group_size=max(len(table), 1), use_dictionary=text
    )
    return buf.getvalue()


# --------------------------------------------------------------------------- decoding
def _read_field(pf: Any, field: str, *, keep: bool = False) -> Any:
    """One parquet column as numpy, or as a Categorical for dictionary-typed text."""
    import pyarrow as pa

    chunked = pf.read(columns=[field]).column(0)
    if pa.types.is_dictionary(chunked.type):
        arr = chunked.unify_dictionaries().combine_chunks()
        codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        strings = arr.dictionary
        if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
            strings = strings.cast(pa.string())
        return _decoded_text(codes, strings, keep=keep)
    if pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type):
        return _text.plain(chunked)  # no Python str per row
    return np.ascontiguousarray(chunked.to_numpy())


def _decoded_text(codes: np.ndarray, strings: Any, *, keep: bool = False) -> Any:
    """A stored dictionary and codes, as a Categorical, or as plain text when long.

    Stores written before the representation was chosen by a sample encoded
    every text column; a dictionary of more than
    :data:`~weightwidget._text.MAX_DISTINCT_SHARE` of the rows opens as the
    plain text today's ingestion would have kept (one Arrow ``take``). ``keep``
    (the label column, or a dictionary today's code chose) stays a Categorical.
    """
    import pyarrow as pa

    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if not keep and len(strings) > _text.MAX_DISTINCT_SHARE * max(len(codes), 1):
        codes = np.asarray(codes, dtype=np.int64)
        return _text.plain(strings.take(pa.array(codes, mask=codes < 0)))
    return make_categorical(codes, strings)


def decode_base(parquet: Any, files: dict[str, bytes], meta: dict[str, Any]) -> dict[str, Any]:
    """Read the base columns (or an added set) back, in their order.

    Parameters
    ----------
    parquet : bytes
        ``columns.parquet``.
    files : dict of str to bytes
        The other base files by name (``text-3.parquet``, ``tensor-2.npy``).
    meta : dict
        The store's ``meta.json`` (stores written before the layout metadata
        name their columns there).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(pa.BufferReader(parquet))
    label = meta.get("label")
    md = {k.decode(): v.decode() for k, v in (pf.schema_arrow.metadata or {}).items()}
    cols: dict[str, Any] = {}
    if "weightwidget.layout" in md:
        for entry in json.loads(md["weightwidget.layout"]):
            name = entry["name"]
            if "file" in entry:
                cols[name] = npy_load(files[entry["file"]])
            elif "dictionary" in entry:
                codes = pf.read(columns=[entry["field"]]).column(0).to_numpy()
                dic = pq.read_table(pa.BufferReader(files[entry["dictionary"]])).column(0)
                keep = name == label or entry.get("text") == "dictionary"
                cols[name] = _decoded_text(codes, dic, keep=keep)
            else:
                keep = name == label or entry.get("text") == "dictionary"
                cols[name] = _read_field(pf, entry["field"], keep=keep)
        release_arrow_memory()
        return cols
    # stores written before the layout: parquet fields are the column names, and the
    # column order and image columns are in meta.json (their comma-joined copy in the
    # parquet metadata broke on names with commas)
    for name in pf.schema_arrow.names:  # one column at a time bounds the decoder's memory
        cols[name] = _read_field(pf, name, keep=name == label)
    release_arrow_memory()
    known = [c["name"] for c in meta.get("columns", [])]
    for i, c in enumerate(meta.get("columns", [])):
        if c.get("kind") == "image":
            cols[c["name"]] = npy_load(files[f"tensor-{i}.npy"])
    if known and set(known) == set(cols):
        return {k: cols[k] for k in known}
    order = _legacy_order(md.get("weightwidget.order", ""), cols)
    return {k: cols[k] for k in order} if len(order) == len(cols) else cols


def _legacy_order(text: str, cols: dict[str, Any]) -> list[str]:
    return [k for k in re.split(",", text) if k in cols] if text else []
