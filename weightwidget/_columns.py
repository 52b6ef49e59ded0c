"""Columns: turning user data into arrays, fingerprints, and the base parquet file.

Numbers and booleans become numpy arrays, text becomes ``pandas.Categorical``
(vectorised filters compare codes, not strings), and same-shape arrays per row
(images) become one ``(n, h, w[, c])`` array.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from . import query
from .store import npy_bytes, npy_load

RESERVED = ("weight", "row")


def release_arrow_memory() -> None:
    """Hand memory pyarrow's allocator keeps for reuse back to the system.

    mimalloc keeps freed pages; after a one-off encode of the base columns that
    would otherwise stay in the process as several times the columns' size.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sorted classes and each row's class index (in the smallest int dtype)."""
    if isinstance(values, pd.Categorical):
        present = np.flatnonzero(
            np.bincount(np.asarray(values.codes) + 1, minlength=len(values.categories) + 1)[1:]
        )
        cats = np.asarray(values.categories, dtype=object)[present]
        order = np.argsort(cats.astype(str), kind="stable")
        remap = np.full(len(values.categories), -1, dtype=np.int64)
        remap[present[order]] = np.arange(len(present))
        return cats[order], small_int(remap[np.asarray(values.codes)])
    arr = np.asarray(values)
    if arr.dtype.kind in "iub" and arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < 1 << 22:  # small integer range: a lookup table, no hashing or sorting
            counts = np.zeros(hi - lo + 1, dtype=np.int64)
            step = 1 << 18  # in blocks, so no full-size temporary
            for i in range(0, arr.size, step):
                counts += np.bincount(arr[i : i + step] - lo, minlength=hi - lo + 1)
            present = np.flatnonzero(counts)
            dtype = small_int(np.array([len(present)])).dtype
            lookup = np.full(hi - lo + 1, -1, dtype=dtype)
            lookup[present] = np.arange(len(present))
            codes = np.empty(arr.size, dtype=dtype)
            for i in range(0, arr.size, step):
                codes[i : i + step] = lookup[arr[i : i + step] - lo]
            return (present + lo).astype(arr.dtype), codes
    codes, uniques = pd.factorize(arr, sort=True)
    return np.asarray(uniques), small_int(codes)


def small_int(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    top = int(codes.max()) if codes.size else 0
    dtype = np.int8 if top < 127 else np.int16 if top < 32767 else np.int32
    return codes.astype(dtype)


def label_values(values: Any) -> Any:
    if isinstance(values, pd.Categorical):
        return np.asarray(values.astype(object))
    return values


def normalise_columns(
    data: dict[str, Any], *, label: str | None, n_rows: int | None = None
) -> dict[str, Any]:
    """Turn user columns into numpy arrays, Categoricals (text) or image tensors."""
    out: dict[str, Any] = {}
    for key, values in data.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"column names must be non-empty strings; got {key!r}")
        if key in RESERVED and key != label:
            raise ValueError(
                f"column name {key!r} is reserved for the table's "
                f"{'weights' if key == 'weight' else 'row ids'}; rename it"
                + (" or pass weights='weight' to start from it" if key == "weight" else "")
            )
        out[key] = normalise_one(key, values)
        length = len(out[key])
        if n_rows is None:
            n_rows = length
        elif length != n_rows:
            raise ValueError(
                f"column {key!r} has {length} rows but {next(iter(data))!r} has {n_rows}; "
                "all columns need one value per sample"
            )
    if n_rows == 0:
        raise ValueError("the table is empty: the data has 0 rows")
    if label is not None:
        lab = out[label]
        kind = query.column_kind(lab)
        if kind == "image":
            raise ValueError(f"label column {label!r} must be one value per sample")
        if kind == "numeric" and np.asarray(lab).dtype.kind == "f":
            arr = np.asarray(lab)
            if np.isnan(arr).any():
                raise ValueError(
                    f"label column {label!r} has missing values (first at row "
                    f"{int(np.flatnonzero(np.isnan(arr))[0])}); fill or drop them"
                )
            if np.all(np.mod(arr, 1) == 0):
                out[label] = arr.astype(np.int64)
        if isinstance(lab, pd.Categorical) and (np.asarray(lab.codes) < 0).any():
            first = int(np.flatnonzero(np.asarray(lab.codes) < 0)[0])
            raise ValueError(
                f"label column {label!r} has missing values (first at row {first}); "
                "fill or drop them"
            )
    return out


def normalise_one(key: str, values: Any) -> Any:
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor
        values = values.detach().cpu().numpy()
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            return categorical(values.array)
        if values.dtype.kind in "iufb":
            return np.array(values.to_numpy(), copy=True)  # the frame may change later
        if pd.api.types.is_extension_array_dtype(values.dtype) and values.dtype.kind in "iuf":
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        if str(values.dtype) == "boolean":
            return values.fillna(False).to_numpy(dtype=bool)
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return pd.Categorical(values.astype(str))
        values = values.to_numpy(dtype=object)
    if isinstance(values, pd.Categorical):
        return categorical(values)
    if (
        isinstance(values, (list, tuple))
        and values
        and hasattr(values[0], "size")
        and hasattr(values[0], "mode")
    ):  # PIL images
        values = [np.asarray(v) for v in values]
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.dtype == object:
        return object_column(key, arr)
    if arr.ndim == 0:
        raise ValueError(f"column {key!r} must be an array, one value per sample")
    if arr.dtype.kind in "US":
        return pd.Categorical(arr.astype(str))
    if arr.dtype.kind not in "iufb":
        raise TypeError(f"column {key!r} has unsupported dtype {arr.dtype}")
    return np.ascontiguousarray(arr).copy()


def object_column(key: str, arr: np.ndarray) -> Any:
    if arr.ndim != 1:
        raise ValueError(f"column {key!r} must be one-dimensional")
    first = next((v for v in arr if v is not None), None)
    if first is not None and (isinstance(first, np.ndarray) or hasattr(first, "mode")):
        try:
            stacked = np.stack([np.asarray(v) for v in arr])
        except ValueError as exc:
            raise ValueError(
                f"column {key!r} holds arrays of different shapes; images must share one shape"
            ) from exc
        return stacked
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in arr[:100]):
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    strings = pd.Series(arr, dtype=object)
    mask = strings.isna()
    return pd.Categorical(strings.where(mask, strings.astype(str)))


def categorical(values: pd.Categorical) -> Any:
    cats = values.categories
    if cats.dtype.kind in "iuf":
        codes = np.asarray(values.codes)
        if (codes < 0).any():
            return np.where(codes < 0, np.nan, np.asarray(cats, dtype=np.float64)[codes])
        return np.asarray(cats)[codes]
    return pd.Categorical.from_codes(
        np.asarray(values.codes), categories=pd.Index(cats.astype(str))
    )


def column_hash(values: Any) -> str:
    h = hashlib.blake2b(digest_size=8)
    if isinstance(values, pd.Categorical):
        h.update(b"cat")
        h.update(pd.util.hash_array(np.asarray(values.astype(object))).tobytes())
    else:
        arr = np.ascontiguousarray(values)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


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
    return "the starting weights differ"


def base_table(columns: dict[str, Any]) -> tuple[Any, dict[str, bytes]]:
    """Return an Arrow table of the 1-D columns and .npy bytes of image columns.

    Numeric columns are wrapped without copying where numpy allows.
    """
    import pyarrow as pa

    arrays, names = [], []
    tensors: dict[str, bytes] = {}
    for i, (key, values) in enumerate(columns.items()):
        kind = query.column_kind(values)
        if kind == "image":
            tensors[f"tensor-{i}.npy"] = npy_bytes(np.ascontiguousarray(values))
            continue
        if isinstance(values, pd.Categorical):
            codes = np.asarray(values.codes).astype(np.int32)
            arrays.append(
                pa.DictionaryArray.from_arrays(
                    pa.array(codes, mask=codes < 0),
                    pa.array(np.asarray(values.categories, dtype=object), type=pa.string()),
                )
            )
        else:
            arrays.append(pa.array(values))
        names.append(key)
    table = pa.table(arrays, names=names)
    table = table.replace_schema_metadata(
        {
            "weightwidget.order": ",".join(columns),
            "weightwidget.tensors": ",".join(
                f"{key}={i}"
                for i, (key, v) in enumerate(columns.items())
                if query.column_kind(v) == "image"
            ),
        }
    )
    return table, tensors


def write_parquet(table: Any, sink: Any) -> None:
    import pyarrow.parquet as pq

    # row groups bound the encoder's working memory, and only text is dictionary-
    # encoded (a dictionary of a million distinct floats is a large hash table for nothing)
    text = [f.name for f in table.schema if str(f.type).startswith("dictionary")]
    pq.write_table(
        table, sink, compression="zstd", row_group_size=1 << 18, use_dictionary=text or False
    )


def encode_base(columns: dict[str, Any]) -> bytes:
    """Parquet bytes of 1-D columns (for added column sets)."""
    import io

    table, _ = base_table(columns)
    buf = io.BytesIO()
    write_parquet(table, buf)
    return buf.getvalue()


def decode_base(parquet: Any, tensors: dict[str, bytes], meta: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(pa.BufferReader(parquet))
    schema = pf.schema_arrow
    md = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    cols: dict[str, Any] = {}
    for name in schema.names:  # one column at a time bounds the decoder's memory
        chunked = pf.read(columns=[name]).column(0)
        if pa.types.is_dictionary(chunked.type):
            arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
            codes = arr.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
            cats = pd.Index(arr.dictionary.to_pylist(), dtype=object)
            cols[name] = pd.Categorical.from_codes(codes, categories=cats)
        else:
            cols[name] = np.ascontiguousarray(chunked.to_numpy())
        del chunked
    release_arrow_memory()
    for item in filter(None, md.get("weightwidget.tensors", "").split(",")):
        key, idx = item.rsplit("=", 1)
        cols[key] = npy_load(tensors[f"tensor-{idx}.npy"])
    order = [k for k in md.get("weightwidget.order", "").split(",") if k in cols]
    return {k: cols[k] for k in order} if len(order) == len(cols) else cols
