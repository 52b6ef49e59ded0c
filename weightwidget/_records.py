"""The store's file formats: framed files, compact columns and revision records.

A framed file is ``MAGIC | header length | JSON header | payload | CRC32``; a
revision holds, per field it changes (``weight``, ``label``), the row ids (uint32
when they fit, delta-coded when sorted) and their new values (one value when all
are equal), zstd-compressed when large. Format-1 records (weightwidget 0.1) still
decode. Pure functions over bytes and arrays: no files are touched here.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._files import Buffers
from .errors import StoreCorruptedError

MAGIC = b"WWSTORE1"
#: Payloads larger than this are compressed (zstd).
COMPRESS_OVER = 4096


def frame(header: dict[str, Any], *payload: Any) -> Buffers:
    """Return ``MAGIC | len | header JSON | payload... | crc32`` as a list of buffers."""
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    parts: Buffers = [MAGIC, struct.pack("<I", len(head)), head, *payload]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    parts.append(struct.pack("<I", crc))
    return parts


def unframe(data: bytes, path: str) -> tuple[dict[str, Any], memoryview]:
    """Check and split a framed file; raise :class:`StoreCorruptedError` naming ``path``."""
    if len(data) < len(MAGIC) + 8 or not data.startswith(MAGIC):
        raise StoreCorruptedError(
            f"{path} is truncated or not a weightwidget store file ({len(data)} bytes, bad header)",
            path=path,
        )
    (stored_crc,) = struct.unpack("<I", data[-4:])
    if zlib.crc32(memoryview(data)[:-4]) != stored_crc:
        raise StoreCorruptedError(
            f"{path} is corrupted or truncated: its checksum does not match", path=path
        )
    (head_len,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = json.loads(data[start : start + head_len])
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
    except ValueError as exc:  # checksum passed, so this is a writer bug or a forgery
        raise StoreCorruptedError(f"{path} has an unreadable header", path=path) from exc
    return header, memoryview(data)[start + head_len : -4]


# --------------------------------------------------------------------------- codecs
def _compress(data: bytes) -> bytes:
    import pyarrow as pa

    return pa.Codec("zstd", 1).compress(data, asbytes=True)


def _decompress(data: Any, size: int, path: str) -> bytes:
    import pyarrow as pa

    try:
        out = pa.Codec("zstd").decompress(data, decompressed_size=size, asbytes=True)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise StoreCorruptedError(f"{path} does not decompress", path=path) from exc
    if len(out) != size:
        raise StoreCorruptedError(f"{path} decompresses to the wrong size", path=path)
    return out


def encode_vector(values: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """Encode a whole column of weights or label codes compactly.

    Weights usually take few distinct values (1.0 and a handful of edits): those
    become a small dictionary plus one byte per row. The bytes are then
    compressed by the caller.
    """
    values = np.ascontiguousarray(values)
    dtype = values.dtype.str
    if values.size:
        sample = np.unique(values[:: max(1, values.size // 4096)])
        if sample.size <= 255:
            codes = np.searchsorted(sample, values)
            np.minimum(codes, sample.size - 1, out=codes)
            if np.array_equal(sample[codes], values):
                return (
                    {
                        "encoding": "dict",
                        "dtype": dtype,
                        "n": int(values.size),
                        "k": int(sample.size),
                    },
                    sample.tobytes() + codes.astype(np.uint8).tobytes(),
                )
    return {"encoding": "raw", "dtype": dtype, "n": int(values.size)}, values.tobytes()


def decode_vector(meta: dict[str, Any], data: memoryview, path: str) -> np.ndarray:
    """Inverse of :func:`encode_vector`."""
    try:
        dtype = np.dtype(meta["dtype"])
        if dtype.str not in ("<f8", "<i4"):
            raise ValueError(f"dtype {dtype}")
        n = int(meta["n"])
        if meta["encoding"] == "dict":
            k = int(meta["k"])
            if len(data) != k * dtype.itemsize + n:
                raise ValueError("size")
            table = np.frombuffer(data, dtype=dtype, count=k)
            codes = np.frombuffer(data, dtype=np.uint8, count=n, offset=k * dtype.itemsize)
            if codes.size and int(codes.max()) >= k:
                raise ValueError("code out of range")
            return table[codes]
        if meta["encoding"] != "raw" or len(data) != n * dtype.itemsize:
            raise ValueError("encoding")
        return np.frombuffer(data, dtype=dtype, count=n).copy()
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreCorruptedError(f"{path} holds an inconsistent column", path=path) from exc


# --------------------------------------------------------------------------- revisions
#: The per-row fields a revision can change, with their on-disk dtypes.
FIELDS = {"weight": "<f8", "label": "<i4"}


@dataclass(frozen=True)
class Change:
    """New values of one field for some rows (``ids=None``: every row)."""

    field: str
    ids: np.ndarray | None
    values: np.ndarray


@dataclass
class State:
    """What a revision holds: weights, label codes (when ever edited), column sets."""

    revision: int
    weights: np.ndarray
    labels: np.ndarray | None = None
    columns: tuple[int, ...] = ()

    def copy(self) -> State:
        """A deep copy (the arrays too)."""
        return State(
            self.revision,
            self.weights.copy(),
            None if self.labels is None else self.labels.copy(),
            self.columns,
        )


@dataclass(frozen=True)
class Revision:
    """One revision: its header and its changes."""

    header: dict[str, Any]
    changes: tuple[Change, ...] = field(default_factory=tuple)
    size: int = 0

    @property
    def number(self) -> int:
        """The revision number."""
        return int(self.header["revision"])

    @property
    def parent(self) -> int | None:
        """The revision it was committed on top of (None for revision 0)."""
        parent = self.header.get("parent")
        return None if parent is None else int(parent)

    def change(self, name: str) -> Change | None:
        """The change of field ``name`` (``"weight"``, ``"label"``), or None."""
        return next((c for c in self.changes if c.field == name), None)

    @property
    def full(self) -> bool:
        """Whether this revision holds every row's weight (it is then a snapshot too)."""
        weight = self.change("weight")
        return weight is not None and weight.ids is None

    def apply(self, state: State, base_labels: Callable[[], np.ndarray]) -> None:
        """Apply this revision to ``state`` in place."""
        for change in self.changes:
            if change.field == "weight":
                target = state.weights
            else:
                if state.labels is None:
                    state.labels = base_labels().copy()
                target = state.labels
            if change.ids is None:
                target[:] = change.values
            else:
                target[change.ids] = change.values
        cols = self.header.get("columns")
        if isinstance(cols, dict) and self.number not in state.columns:
            state.columns = (*state.columns, self.number)
        state.revision = self.number


def rev_name(rev: int) -> str:
    """File name of a revision inside ``revisions/``."""
    return f"revisions/r{rev:012d}.rev"


def snap_name(rev: int) -> str:
    """File name of a snapshot inside ``snapshots/``."""
    return f"snapshots/r{rev:012d}.snap"


def log_name(block: int) -> str:
    """File name of the history chunk of revisions ``block*256 .. block*256+255``."""
    return f"log/b{block:09d}.log"


def pack_name(block: int) -> str:
    """File name of the pack of a whole block's revision files (beside its chunk)."""
    return f"log/b{block:09d}.pack"


def encode_revision(header: dict[str, Any], changes: Iterable[Change]) -> Buffers:
    """Frame a revision with its changes, compactly.

    Per change: its row ids (uint32 when they fit, delta-coded when sorted) and
    its values (one value when all are equal); the payload is zstd-compressed
    when large.
    """
    parts: list[bytes] = []
    metas = []
    for change in changes:
        dtype = FIELDS[change.field]
        values = np.ascontiguousarray(change.values, dtype=dtype)
        meta: dict[str, Any] = {"field": change.field}
        if change.ids is None:
            vmeta, blob = encode_vector(values)
            meta.update(ids="all", values="vector", vector=vmeta)
            parts.append(blob)
            meta["nbytes"] = [0, len(blob)]
        else:
            ids = np.asarray(change.ids, dtype=np.int64)
            sorted_ids = ids.size > 1 and bool(np.all(ids[1:] > ids[:-1]))
            id_dtype = "<u4" if ids.size == 0 or int(ids.max()) < 2**32 else "<i8"
            id_arr = np.diff(ids, prepend=0) if sorted_ids else ids
            id_blob = id_arr.astype(id_dtype).tobytes()
            scalar = values.size > 0 and bool(np.all(values == values[0]))
            val_blob = (values[:1] if scalar else values).tobytes()
            meta.update(
                n=int(ids.size),
                ids=id_dtype,
                delta=sorted_ids,
                values="scalar" if scalar else "array",
                dtype=dtype,
                nbytes=[len(id_blob), len(val_blob)],
            )
            parts += [id_blob, val_blob]
        metas.append(meta)
    header = {**header, "changes": metas, "format": 2}
    size = sum(len(p) for p in parts)
    if size > COMPRESS_OVER and _compressible(parts):
        payload = b"".join(parts)
        packed = _compress(payload)
        if len(packed) < 0.9 * size:
            return frame({**header, "codec": "zstd", "raw_size": size}, packed)
    return frame({**header, "codec": "raw"}, *parts)


def _compressible(parts: list[bytes]) -> bool:
    """Whether compressing is worth a try: a 64 KiB sample of the largest part shrinks."""
    largest = max(parts, key=len)
    if len(largest) <= 1 << 16:
        return True
    sample = largest[: 1 << 16]
    return len(_compress(sample)) < 0.8 * len(sample)


def decode_revision(data: bytes, path: str, n_rows: int) -> Revision:
    """Inverse of :func:`encode_revision`; also reads format-1 revision files."""
    header, payload = unframe(data, path)
    try:
        if header.get("format") != 2:
            return _decode_v1(header, payload, path, len(data))
        if header.get("codec") == "zstd":
            payload = memoryview(_decompress(payload, int(header["raw_size"]), path))
        elif header.get("codec") != "raw":
            raise ValueError("codec")
        changes = []
        offset = 0
        for meta in header["changes"]:
            name = meta["field"]
            if name not in FIELDS:
                raise ValueError(f"field {name!r}")
            id_len, val_len = (int(x) for x in meta["nbytes"])
            ids_blob = payload[offset : offset + id_len]
            vals_blob = payload[offset + id_len : offset + id_len + val_len]
            if len(vals_blob) != val_len or len(ids_blob) != id_len:
                raise ValueError("payload size")
            offset += id_len + val_len
            if meta["ids"] == "all":
                values = decode_vector(meta["vector"], vals_blob, path)
                if values.size != n_rows or values.dtype.str != FIELDS[name]:
                    raise ValueError("full column size")
                changes.append(Change(name, None, values))
                continue
            n = int(meta["n"])
            ids = np.frombuffer(ids_blob, dtype=np.dtype(meta["ids"]), count=n).astype(np.int64)
            if meta.get("delta"):
                ids = np.cumsum(ids)
            dtype = np.dtype(meta["dtype"])
            if dtype.str != FIELDS[name]:
                raise ValueError("dtype")
            if meta["values"] == "scalar":
                values = np.full(n, np.frombuffer(vals_blob, dtype=dtype, count=1)[0])
            else:
                values = np.frombuffer(vals_blob, dtype=dtype, count=n).copy()
            if n and (int(ids.min()) < 0 or int(ids.max()) >= n_rows):
                raise ValueError("row id out of range")
            changes.append(Change(name, ids, values))
        if offset != len(payload):
            raise ValueError("trailing bytes")
        if "weight" in [c.field for c in changes]:
            _check_finite(next(c.values for c in changes if c.field == "weight"), path)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StoreCorruptedError(f"{path} has an inconsistent delta ({exc})", path=path) from exc
    return Revision(header, tuple(changes), len(data))


def _decode_v1(header: dict[str, Any], payload: memoryview, path: str, size: int) -> Revision:
    n = int(header["n_ids"])
    if header["value_mode"] == "full":
        if len(payload) != 8 * n:
            raise ValueError("payload size")
        return Revision(
            header, (Change("weight", None, np.frombuffer(payload, "<f8").copy()),), size
        )
    id_dtype = np.dtype(header["id_dtype"])
    ids = np.frombuffer(payload, dtype=id_dtype, count=n).astype(np.int64)
    rest = payload[n * id_dtype.itemsize :]
    if header["value_mode"] == "scalar":
        values = np.full(n, np.frombuffer(rest, dtype="<f8", count=1)[0])
    else:
        values = np.frombuffer(rest, dtype="<f8", count=n).copy()
    return Revision(header, (Change("weight", ids, values),), size)


def _check_finite(values: np.ndarray, path: str) -> None:
    if values.size and not (np.isfinite(values).all() and values.min() >= 0):
        raise ValueError("weights that are not finite and >= 0")
