"""Curated exports: the rows a table trains on, as a Parquet or CSV file with provenance.

:func:`export` writes one row per exported sample (``row`` id, the label
column, ``weight``, chosen data columns) and records where they came from: the
table's name, revision, store URL, label column and classes. Parquet files carry
that record in their schema metadata (key ``weightwidget``); a CSV file gets it
in a JSON file beside it (``<file>.json``), so the CSV itself stays plain for
every reader. :func:`read_export` reads a file and its record back.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._checks import check_choice, unknown_column_message
from ._text import as_text, is_text

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = ["FORMATS", "METADATA_KEY", "export", "read_export"]

FORMATS = ("parquet", "csv")
#: Schema-metadata key of the provenance record in Parquet exports.
METADATA_KEY = "weightwidget"


def export(
    table: WeightTable,
    path: str | os.PathLike[str],
    *,
    where: Any = None,
    columns: list[str] | None = None,
    format: str | None = None,
    include_excluded: bool = False,
) -> dict[str, Any]:
    """Write the curated rows of ``table`` to ``path``; see :meth:`WeightTable.export`.

    Parameters
    ----------
    table : WeightTable
        The table, at the revision to export (``WeightTable.open(store,
        revision=r)`` exports a past one).
    path : str or path
        A local file; replaced atomically if it exists.
    where : str, array-like of bool or int, slice or None, default=None
        Only these rows.
    columns : list of str, optional
        Data columns besides ``row``, the label and ``weight`` (default: every
        column that is not an image column; ``[]``: none).
    format : {"parquet", "csv"}, optional
        Default: CSV for a ``.csv`` suffix, Parquet otherwise.
    include_excluded : bool, default=False
        Also write rows that never train: weight 0, or unlabelled.

    Returns
    -------
    dict
        The provenance record written: ``table``, ``store``, ``revision``,
        ``label``, ``classes``, ``rows``, ``where``, ``include_excluded``,
        ``columns``, ``created`` and ``weightwidget`` (the version).

    Raises
    ------
    ValueError
        An unknown format or column, an image column (export row ids and index
        your dataset with them instead), a malformed filter.
    """
    from . import __version__

    target = Path(os.fspath(path))
    if format is None:
        format = "csv" if target.suffix.lower() == ".csv" else "parquet"
    check_choice(format, FORMATS, what="format")
    if not isinstance(include_excluded, bool):
        raise TypeError(f"include_excluded must be True or False; got {include_excluded!r}")
    chosen = _columns(table, columns)
    mask = table.mask(where)
    if not include_excluded:
        mask = mask & (table.weights > 0) & (table.label_codes >= 0)
    ids = np.flatnonzero(mask)
    label = table.label
    data: dict[str, Any] = {
        "row": ids,
        label: _take(table.column(label), ids),
        "weight": table.weights[ids],
    }
    for name in chosen:
        data[name] = _take(table.column(name), ids)
    frame = pd.DataFrame(data)
    record = {
        "table": table.name,
        "store": table.store_url,
        "revision": int(table.revision),
        "label": label,
        "classes": [_plain(c) for c in table.classes.tolist()],
        "rows": len(ids),
        "n_rows": len(table),
        "where": where if isinstance(where, str) or where is None else "rows given",
        "include_excluded": include_excluded,
        "columns": list(frame.columns),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "weightwidget": __version__,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    if format == "parquet":
        _write_atomic(target, lambda f: _parquet(frame, record, f))
    else:
        _write_atomic(target, lambda f: frame.to_csv(f, index=False))
        sidecar = target.with_name(target.name + ".json")
        body = json.dumps(record, indent=1, ensure_ascii=False).encode()
        _write_atomic(sidecar, lambda f: f.write(body))
    return record


def read_export(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read an exported file and its provenance record.

    Parameters
    ----------
    path : str or path
        A file written by :func:`export` (Parquet, or CSV with its ``.json``
        beside it).

    Returns
    -------
    (pandas.DataFrame, dict)
        The rows and the record (``table``, ``revision``, ``store``, ...).

    Raises
    ------
    ValueError
        The file carries no weightwidget record (a CSV without its ``.json``).
    """
    target = Path(os.fspath(path))
    if target.suffix.lower() == ".csv":
        sidecar = target.with_name(target.name + ".json")
        if not sidecar.exists():
            raise ValueError(f"{target} has no provenance record: {sidecar.name} is not beside it")
        return pd.read_csv(target), json.loads(sidecar.read_text())
    import pyarrow.parquet as pq

    table = pq.read_table(target)
    meta = table.schema.metadata or {}
    raw = meta.get(METADATA_KEY.encode())
    if raw is None:
        raise ValueError(f"{target} carries no {METADATA_KEY!r} schema metadata")
    return table.to_pandas(), json.loads(raw)


def _columns(table: WeightTable, columns: list[str] | None) -> list[str]:
    names = [c for c in table.columns if c != table.label]
    if columns is None:
        return [c for c in names if table.column_kind(c) != "image"]
    if isinstance(columns, str):
        raise TypeError(f"columns must be a list of column names; got the string {columns!r}")
    out = []
    for name in columns:
        if name in ("row", "weight", table.label):
            continue  # always written
        if name not in names:
            raise ValueError(f"columns: {unknown_column_message(name, names)}")
        if table.column_kind(name) == "image":
            raise ValueError(
                f"column {name!r} holds images, which an export does not carry; export the "
                "row ids and index your dataset with them"
            )
        out.append(name)
    return out


def _take(values: Any, ids: np.ndarray) -> Any:
    if is_text(values):  # in Arrow: a Categorical stays one (parquet keeps it dictionary-encoded)
        return as_text(values).take(ids)
    return np.asarray(values)[ids]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _parquet(frame: pd.DataFrame, record: dict[str, Any], sink: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[METADATA_KEY.encode()] = json.dumps(record, ensure_ascii=False).encode()
    pq.write_table(arrow.replace_schema_metadata(meta), sink, compression="zstd")


def _write_atomic(target: Path, write: Any) -> None:
    """Write through ``write(binary_file)`` into a temporary name, then move it into place."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
