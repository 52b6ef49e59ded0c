"""A text column, whichever way it is held: one interface for filters, sorts, pages, summaries.

A text column is held in one of two representations, chosen once at ingestion
(:func:`encode`) and both public pandas types:

``dictionary``
    a :class:`pandas.Categorical`: one small int code per row (-1 where missing)
    and the distinct values as Arrow-backed categories. Predicates run once per
    distinct value and reach the rows through the codes; sorting sorts codes.
``plain``
    pandas' Arrow-backed string array (:class:`pandas.arrays.ArrowStringArray`,
    the ``str`` dtype): the strings themselves, as the user's frame held them
    (no copy). Predicates are Arrow compute kernels over the rows.

The rule (:func:`wants_dictionary`): dictionary-encode when a random sample of
:data:`SAMPLE_ROWS` rows (every row of a smaller column) predicts at most
:data:`MAX_DISTINCT_SHARE` of the rows to be distinct values. The prediction is
the sample's distinct count plus its singletons scaled to the rows it did not
see (Good-Turing: the share of a sample's values seen once estimates the share
of rows holding a value the sample missed), so a long tail of unique values
counts as distinct even when the sample also holds a few frequent ones.
Encoding a mostly-distinct column costs a hash table of ~90 bytes per distinct
string and ~4x ``to_parquet``'s time at 10M rows, and buys nothing: its
"dictionary" is as long as the column.

Every consumer goes through :func:`as_text`, which wraps either representation
(or any array-like of strings) in a :class:`TextColumn`. Text compares by code
point (UTF-8 byte order, as Python's ``<`` does); ``contains`` ignores case the
way :meth:`str.casefold` does; missing values match nothing but ``!=`` and
``is missing``, and sort last.
"""

from __future__ import annotations

import abc
import bisect
import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MAX_DISTINCT_SHARE",
    "SAMPLE_ROWS",
    "TextColumn",
    "as_text",
    "compare_columns",
    "encode",
    "is_text",
    "wants_dictionary",
]

#: Rows sampled (at random, seeded) to choose a column's representation.
SAMPLE_ROWS = 65_536
#: Dictionary-encode when at most this share of the rows is predicted distinct.
MAX_DISTINCT_SHARE = 0.25
#: Rows per step of the plain representation's folds, hashes and takes (bounds temporaries).
_STEP = 1 << 20
#: The separator :func:`casefold` puts between rows: a lone surrogate, which valid
#: UTF-8 (every Arrow string) never holds, encoded with ``surrogatepass``.
_SEP = "\ud800".encode("utf-8", "surrogatepass")


def _encode(text: str) -> bytes:
    # surrogatepass: lone surrogates (from undecodable file names) round-trip, and
    # UTF-8 byte order is code point order, so comparisons agree with Python's
    return text.encode("utf-8", "surrogatepass")


def _str_dtype() -> Any:
    try:  # pandas' default str dtype (NaN for missing), Arrow-backed
        return pd.StringDtype("pyarrow", na_value=np.nan)
    except TypeError:  # pandas < 2.3
        return pd.StringDtype("pyarrow")


def _to_numpy(arrow_bool: Any) -> np.ndarray:
    return np.asarray(arrow_bool.to_numpy(zero_copy_only=False), dtype=bool)


def _mask(arrow_bool: Any, missing: bool = False) -> np.ndarray:
    """An Arrow boolean result as a numpy mask, nulls (missing rows) as ``missing``."""
    if arrow_bool.null_count:
        arrow_bool = arrow_bool.fill_null(missing)
    return _to_numpy(arrow_bool)


def take(arr: Any, ids: Any) -> Any:
    """``arr.take(ids)`` for an Arrow array, or a ChunkedArray taken chunk by chunk.

    Arrow's own take on a ChunkedArray first concatenates every chunk: a copy of
    the whole column to read a page of it. Here each chunk is taken from alone
    (the result is then a ChunkedArray, in the order of ``ids``).
    """
    import pyarrow as pa

    ids = np.asarray(ids, dtype=np.int64)
    if isinstance(arr, pa.Array):
        return arr.take(pa.array(ids))
    if arr.num_chunks <= 1:
        one = arr.chunk(0) if arr.num_chunks else pa.array([], type=arr.type)
        return one.take(pa.array(ids))
    bounds = np.cumsum([0, *(len(c) for c in arr.chunks)])
    which = np.searchsorted(bounds, ids, side="right") - 1
    ascending = bool(np.all(which[1:] >= which[:-1]))
    order = np.arange(len(ids)) if ascending else np.argsort(which, kind="stable")
    edges = np.searchsorted(which[order], np.arange(arr.num_chunks + 1))
    parts = [
        arr.chunk(c).take(pa.array(ids[order[edges[c] : edges[c + 1]]] - bounds[c]))
        for c in range(arr.num_chunks)
        if edges[c + 1] > edges[c]
    ]
    if ascending:  # already in the order of ids
        return pa.chunked_array(parts, type=arr.type)
    back = np.empty(len(ids), dtype=np.int64)
    back[order] = np.arange(len(ids))
    return pa.concat_arrays(parts).take(pa.array(back))


# --------------------------------------------------------------------------- choosing
def _chunked(strings: Any) -> Any:
    """A pyarrow (large_)string ChunkedArray of ``strings`` (an Arrow array, or chunked)."""
    import pyarrow as pa

    if isinstance(strings, pa.Array):
        strings = pa.chunked_array([strings], type=strings.type)
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        strings = strings.cast(pa.large_string())
    return strings


def wants_dictionary(strings: Any) -> bool:
    """Whether a column of strings should be dictionary-encoded (see the module notes)."""
    import pyarrow.compute as pc

    n = len(strings)
    if n <= SAMPLE_ROWS:
        sample = strings
    else:
        picks = np.random.default_rng(0).choice(n, SAMPLE_ROWS, replace=False)
        sample = take(strings, np.sort(picks))
    counts = pc.value_counts(sample).field("counts").to_numpy()
    distinct = len(counts)
    if len(sample) < n:  # values the sample missed: its singletons' share of the rest
        once = int(np.count_nonzero(counts == 1))
        distinct += once * (n - len(sample)) / len(sample)
    return distinct <= MAX_DISTINCT_SHARE * n


def encode(strings: Any, *, dictionary: bool | None = None) -> Any:
    """The public value of a text column: a Categorical or an Arrow-backed string array.

    Parameters
    ----------
    strings : pyarrow.Array or pyarrow.ChunkedArray of (large_)string
        The column, nulls for missing values.
    dictionary : bool, optional
        Force a representation; by default :func:`wants_dictionary` decides.
    """
    strings = _chunked(strings)
    if dictionary is None:
        dictionary = wants_dictionary(strings)
    if dictionary:
        return dictionary_encode(strings)
    return plain(strings)


def plain(strings: Any) -> Any:
    """The Arrow-backed pandas string array over ``strings`` (no copy of large_string text)."""
    return pd.array(_chunked(strings), dtype=_str_dtype())


def dictionary_encode(strings: Any) -> pd.Categorical:
    """Dictionary-encode in one Arrow pass (nulls become code -1).

    Categories keep the order of first appearance: sorting them here would cost
    more than writing them (filters and sorts handle any category order).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = _chunked(strings)
    one = strings.chunk(0) if strings.num_chunks == 1 else strings.combine_chunks()
    encoded = pc.dictionary_encode(one)
    codes = encoded.indices
    if codes.null_count:
        codes = codes.fill_null(-1)
    out = categorical(_small(codes.to_numpy(zero_copy_only=False)), encoded.dictionary)
    del encoded, codes
    pa.default_memory_pool().release_unused()  # the encoder's hash table
    return out


def _small(codes: np.ndarray) -> np.ndarray:
    top = int(codes.max()) if codes.size else 0
    dtype = np.int8 if top < 127 else np.int16 if top < 32767 else np.int32
    return codes.astype(dtype, copy=False)


def categorical(codes: np.ndarray, strings: Any) -> pd.Categorical:
    """A Categorical over Arrow-backed categories (``strings`` distinct, no nulls).

    Public pandas only: the categories' uniqueness check costs about a
    microsecond per category, and dictionaries are small by the rule above (a
    store of an older version with a long dictionary is opened as plain text).
    """
    import pyarrow as pa

    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        strings = strings.cast(pa.large_string())
    categories = pd.Index(pd.array(strings, dtype=_str_dtype()), copy=False)
    dtype = pd.CategoricalDtype(categories, ordered=False)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def is_text(values: Any) -> bool:
    """Whether ``values`` is one of the two public text representations."""
    if isinstance(values, pd.Categorical):
        return True
    return isinstance(values, pd.api.extensions.ExtensionArray) and _string_dtype(values.dtype)


def _string_dtype(dtype: Any) -> bool:
    import pyarrow as pa

    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )


# --------------------------------------------------------------------------- folding
def casefold(strings: Any) -> Any:
    """``str.casefold`` of every row, as a large_binary array (missing rows become b"").

    ASCII rows are lowered by Arrow. The others are folded by Python's own
    ``str.casefold`` in one call per step of rows, never one per row: their UTF-8
    bytes are joined with a separator no valid UTF-8 holds, decoded once, folded
    once, encoded once, and split at the separators with numpy.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = _chunked(strings).cast(pa.large_string()).combine_chunks()
    if strings.null_count:
        strings = strings.fill_null("")
    ascii_rows = _to_numpy(pc.string_is_ascii(strings))
    lowered = pc.ascii_lower(strings).cast(pa.large_binary())
    other = np.flatnonzero(~ascii_rows)
    if not len(other):
        return lowered
    parts = [
        _fold_rows(strings.take(pa.array(other[i : i + _STEP])))
        for i in range(0, len(other), _STEP)
    ]
    where = np.arange(len(strings))  # ASCII rows from Arrow, then the folded others
    where[other] = len(strings) + np.arange(len(other))
    return pa.concat_arrays([lowered, *parts]).take(pa.array(where))


def _fold_rows(rows: Any) -> Any:
    """Python's casefold of ``rows`` (no nulls) with one decode, fold and encode."""
    import pyarrow as pa
    import pyarrow.compute as pc

    binary = rows.cast(pa.large_binary())
    sep = pa.scalar(_SEP, pa.large_binary())
    joined = pc.binary_join_element_wise(binary, pa.scalar(b"", pa.large_binary()), sep)
    _, offsets, data = joined.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[joined.offset : joined.offset + len(joined) + 1]
    raw = memoryview(data)[int(off[0]) : int(off[-1])]
    folded = bytes(raw).decode("utf-8", "surrogatepass").casefold().encode("utf-8", "surrogatepass")
    b = np.frombuffer(folded, dtype=np.uint8)
    # ED A0 80 is a surrogate: valid UTF-8 never holds ED followed by A0..BF
    ends = np.flatnonzero((b[:-2] == 0xED) & (b[1:-1] == 0xA0) & (b[2:] == 0x80))
    keep = np.ones(len(b), dtype=bool)
    for k in range(3):
        keep[ends + k] = False
    starts = np.r_[0, ends[:-1] + 3]
    new_off = np.r_[0, np.cumsum(ends - starts)].astype(np.int64)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(rows), [None, pa.py_buffer(new_off), pa.py_buffer(b[keep])]
    )


def _substring_hits(folded: Any, needles: Sequence[str]) -> Any:
    """Arrow booleans: which of the ``folded`` rows contain any (case-folded) needle."""
    import pyarrow as pa
    import pyarrow.compute as pc

    patterns = sorted({_encode(needle.casefold()) for needle in needles})
    if len(patterns) == 1:
        return pc.match_substring(folded, pattern=patterns[0])
    # one pass of RE2 (linear time, an automaton over all needles) instead of a
    # pass per needle; binary input is matched byte by byte, so escape bytes
    regex = "|".join("".join(f"\\x{{{b:02X}}}" for b in p) for p in patterns)
    try:
        return pc.match_substring_regex(folded, pattern=regex)
    except (pa.ArrowException, ValueError):  # a pattern too large for RE2
        hits = None
        for p in patterns:
            one = pc.match_substring(folded, pattern=p)
            hits = one if hits is None else pc.or_(hits, one)
        return hits


# --------------------------------------------------------------------------- the interface
class TextColumn(abc.ABC):
    """What every consumer needs of a text column (see the module notes).

    Masks are new numpy bool arrays of one entry per row; row ids are int64.
    """

    kind: str  # "dictionary" or "plain"
    values: Any  # the public value (Categorical or ArrowStringArray)

    @abc.abstractmethod
    def __len__(self) -> int:
        """Rows."""

    @abc.abstractmethod
    def missing(self) -> np.ndarray:
        """Rows without a value."""

    @abc.abstractmethod
    def compare(self, op: str, value: str) -> np.ndarray:
        """``column op value`` for ``op`` in ``== != < <= > >=`` (missing: only ``!=``)."""

    @abc.abstractmethod
    def isin(self, values: Sequence[str]) -> np.ndarray:
        """Rows equal to one of ``values``."""

    @abc.abstractmethod
    def contains(self, needles: Sequence[str]) -> np.ndarray:
        """Rows containing any of ``needles``, ignoring case (``str.casefold``)."""

    @abc.abstractmethod
    def arrow(self) -> Any:
        """The rows as one pyarrow (large_)string array, nulls where missing."""

    def binary(self) -> Any:
        """The rows as pyarrow binary (UTF-8 bytes), nulls where missing."""
        import pyarrow as pa

        arr = self.arrow()
        large = pa.types.is_large_string(arr.type)
        return arr.cast(pa.large_binary() if large else pa.binary())

    @abc.abstractmethod
    def sort_order(self, *, ascending: bool = True) -> np.ndarray:
        """Row ids by value: stable (ties by row id), missing last either way."""

    def head(self, rows: np.ndarray | None, *, ascending: bool, k: int) -> np.ndarray:
        """The first ``k`` row ids of :meth:`sort_order` restricted to ``rows``, in O(n)."""
        import pyarrow.compute as pc

        ids = np.arange(len(self), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        values = self.binary()
        if rows is not None:
            values = take(values, ids)
        present = int(len(values) - values.null_count)
        if present > k:
            order = "ascending" if ascending else "descending"
            top = pc.select_k_unstable(values, k=k, sort_keys=[("dummy", order)])
            cut = take(values, top[k - 1 : k].to_numpy())[0]  # the k-th: keep all up to it
            keep = pc.less_equal(values, cut) if ascending else pc.greater_equal(values, cut)
            picked = np.flatnonzero(_mask(keep))
        else:
            picked = np.flatnonzero(~_mask(pc.is_null(values)))
        sub = take(values, picked)
        order = "ascending" if ascending else "descending"
        first = pc.array_sort_indices(sub, order=order).to_numpy()[:k]  # stable
        out = ids[picked[first]]
        if len(out) < k:  # missing values last, by row id
            gaps = ids[_mask(pc.is_null(values))]
            out = np.concatenate([out, gaps[: k - len(out)]])
        return out

    def strings(self, ids: np.ndarray) -> list[str | None]:
        """The values of rows ``ids`` as Python strings (None where missing)."""
        return take(self.arrow(), ids).to_pylist()

    @abc.abstractmethod
    def take(self, ids: np.ndarray) -> Any:
        """Rows ``ids`` in the same public representation."""

    @abc.abstractmethod
    def groups(self) -> tuple[np.ndarray, Any]:
        """One code per row (-1 where missing) and the value of each code (pyarrow)."""

    def hash_into(self, h: Any) -> None:
        """Feed the rows' values to hasher ``h``: the same for either representation.

        Two streams, each in steps of rows: every row's UTF-8 length (int64, -1
        where missing) and the UTF-8 bytes; their digests are fed to ``h``.
        """
        import pyarrow as pa

        lengths, data = hashlib.sha256(), hashlib.sha256()
        for chunk in self._steps():
            arr = chunk.cast(pa.large_string()) if pa.types.is_string(chunk.type) else chunk
            offsets, buf = _buffers(arr)
            lens = np.diff(offsets)
            if arr.null_count:
                lens[~_to_numpy(arr.is_valid())] = -1
            lengths.update(memoryview(np.ascontiguousarray(lens, dtype="<i8")).cast("B"))
            data.update(buf)
        h.update(b"text3")
        h.update(lengths.digest())
        h.update(data.digest())

    @abc.abstractmethod
    def _steps(self) -> Any:
        """The rows as pyarrow string arrays of at most :data:`_STEP` rows, in order."""


def _buffers(arr: Any) -> tuple[np.ndarray, Any]:
    """Offsets (int64, from 0) and the UTF-8 bytes of a large_string array."""
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    start, stop = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
    data = memoryview(data_buf)[start:stop] if data_buf is not None else b""
    return offsets - start, data


# --------------------------------------------------------------------------- row hashes
#: Keep the first ``l`` bytes of a big-endian 8-byte word (index: l, 0..8).
_KEEP = np.array(
    [0, *(((1 << 64) - 1) ^ ((1 << (64 - 8 * k)) - 1) for k in range(1, 8)), (1 << 64) - 1],
    dtype=np.uint64,
)
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def row_hashes(strings: Any) -> np.ndarray:
    """A 64-bit hash of every row's UTF-8 bytes and length (uint64; missing rows: any value).

    Vectorised over 8-byte words: pass ``j`` reads the ``j``-th word of the rows
    that long (unaligned loads through a strided view of the bytes), so the cost
    is linear in the text's bytes, with no per-row Python.
    """
    import pyarrow as pa

    out = np.empty(len(strings), dtype=np.uint64)
    at = 0
    for chunk in _chunked(strings).chunks:
        for i in range(0, len(chunk), _STEP):
            part = chunk.slice(i, _STEP)
            part = part.cast(pa.large_string()) if pa.types.is_string(part.type) else part
            out[at : at + len(part)] = _hash_step(part)
            at += len(part)
    return out


def _hash_step(arr: Any) -> np.ndarray:
    offsets, data = _buffers(arr)
    lens = np.diff(offsets)
    padded = np.zeros(len(data) + 8, dtype=np.uint8)  # room to read a word past the end
    padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
    words = np.ndarray(shape=(len(data) + 1,), dtype=">u8", buffer=padded, strides=(1,))
    with np.errstate(over="ignore"):
        h = lens.astype(np.uint64) * _MIX[0]
        rows = np.arange(len(arr))
        j = 0
        while len(rows):
            left = lens[rows] - 8 * j
            word = words[offsets[rows] + 8 * j].astype(np.uint64) & _KEEP[np.minimum(left, 8)]
            h[rows] = (h[rows] ^ word) * _MIX[1]
            h[rows] ^= h[rows] >> np.uint64(31)
            j += 1
            rows = rows[left > 8]
        h ^= h >> np.uint64(29)
        h *= _MIX[2]
        h ^= h >> np.uint64(32)
    return h


# --------------------------------------------------------------------------- sorting
class _Rows:
    """The rows of a text column, read a few bytes at a time for :func:`sort_strings`.

    Reads go straight to each chunk's UTF-8 buffer through an unaligned uint64
    view (no string is copied); a read that would pass the end of a buffer takes
    the buffer's last 8 bytes and shifts.
    """

    def __init__(self, strings: Any) -> None:
        import pyarrow as pa

        self.parts = []
        for chunk in _chunked(strings).chunks:
            arr = chunk.cast(pa.large_string()) if pa.types.is_string(chunk.type) else chunk
            offsets, data = _buffers(arr)
            raw = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, np.uint8)
            if len(raw) < 8:  # too short for a view: a padded copy (a few bytes)
                raw = np.concatenate([raw, np.zeros(8, dtype=np.uint8)])
            words = np.ndarray(shape=(len(raw) - 7,), dtype=">u8", buffer=raw, strides=(1,))
            self.parts.append((offsets, words, arr))  # arr: keeps the buffer alive
        self.bounds = np.cumsum([0, *(len(p[0]) - 1 for p in self.parts)])
        self.chunk_of: np.ndarray | None = None  # chunk of each row, when several
        if len(self.parts) > 1:
            sizes = np.diff(self.bounds)
            self.chunk_of = np.repeat(np.arange(len(sizes), dtype=np.int16), sizes)

    def read(self, rows: np.ndarray, pos: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Bytes ``pos .. pos + width`` of ``rows`` as big-endian numbers, and their lengths.

        Bytes past a row's end read as zero. In steps of rows: the temporaries
        stay small.
        """
        values = np.empty(len(rows), dtype=np.uint64)
        lens = np.empty(len(rows), dtype=np.int64)
        for i in range(0, len(rows), _STEP):
            part = rows[i : i + _STEP]
            if self.chunk_of is None:
                values[i : i + len(part)], lens[i : i + len(part)] = self._read(0, part, pos, width)
                continue
            which = self.chunk_of[part]
            order = np.argsort(which, kind="stable")  # a radix sort of small ints
            edges = np.searchsorted(which[order], np.arange(len(self.parts) + 1))
            for c in range(len(self.parts)):
                at = order[edges[c] : edges[c + 1]]
                if len(at):
                    got = self._read(c, part[at] - self.bounds[c], pos, width)
                    values[i + at], lens[i + at] = got
        return values, lens

    def _read(self, c: int, rows: np.ndarray, pos: int, width: int) -> tuple[Any, Any]:
        offsets, words, _ = self.parts[c]
        start = offsets[rows]
        lens = offsets[rows + 1] - start
        at = start + pos
        last = len(words) - 1  # the last position a whole word can be read from
        base = np.minimum(at, last)
        word = words[base].astype(np.uint64)
        over = at - base  # bytes the read was moved back by (0..8)
        if over.any():  # shift them out; a shift by 64 is not defined, so 8 bytes -> 0
            word = np.where(
                over >= 8, np.uint64(0), word << (8 * np.minimum(over, 7)).astype(np.uint64)
            )
        word &= _KEEP[np.clip(lens - pos, 0, width)]
        return word >> np.uint64(64 - 8 * width), lens


def sort_strings(strings: Any, *, ascending: bool = True) -> np.ndarray:
    """Row ids of a string column in code point order: stable, missing last.

    A most-significant-byte-first sort on numbers, not on strings: the first
    round sorts every row by its first 8 bytes (a big-endian uint64, zero past
    the end); each next round sorts only the rows still tied with a neighbour,
    by (their run, the next few bytes) packed into one uint64; rows tied to the
    end are sorted by length, then by row id. Every round is a numpy sort of
    contiguous integers, which beats comparing strings scattered in memory
    (Arrow's ``sort_indices``) several times over at 10M rows. Descending order
    complements every key, so equal values still keep their row order.
    """
    import pyarrow.compute as pc

    source = _Rows(strings)
    n = int(source.bounds[-1])
    flip = np.uint64(0) if ascending else ~np.uint64(0)
    chunked = _chunked(strings)
    if chunked.null_count:
        missing = _to_numpy(pc.is_null(chunked))
        rows, gaps = np.flatnonzero(~missing), np.flatnonzero(missing)
        del missing
    else:
        rows, gaps = np.arange(n, dtype=np.int64), np.empty(0, dtype=np.int64)
    key, _ = source.read(rows, 0, 8)
    key ^= flip
    order = np.argsort(key)
    rows, key = rows[order], key[order]
    del order
    tied = _tied(key)  # positions (into rows) of runs not yet told apart
    keys = key[tied]
    del key
    pos = 8
    while len(tied):
        r = rows[tied]
        local = _run_ids(keys).view(np.uint64)  # the run of each tied row (>= 0)
        del keys
        bits = max(1, int(local[-1]).bit_length())
        width = (64 - bits) // 8
        value, lens = source.read(r, pos, width)
        if bool(np.all(lens <= pos)):  # no bytes left: by length, then by row id
            by_len = lens if ascending else -lens
            rows[tied] = r[np.lexsort((r, by_len, local))]
            break
        del lens
        value ^= flip
        value &= np.uint64((1 << (8 * width)) - 1)
        local <<= np.uint64(8 * width)
        value |= local  # (run, next bytes) in one number
        del local
        sub = np.argsort(value)
        rows[tied] = r[sub]
        del r
        value = value[sub]
        del sub
        inner = _tied(value)
        tied, keys = tied[inner], value[inner]
        del value, inner
        pos += width
    return np.concatenate([rows, gaps])


def _run_ids(keys: np.ndarray) -> np.ndarray:
    """0, 0, 1, 1, 1, 2, ...: a new id wherever sorted ``keys`` change."""
    change = np.empty(len(keys), dtype=np.int64)
    change[:1] = 0
    np.not_equal(keys[1:], keys[:-1], out=change[1:], casting="unsafe")
    return np.cumsum(change, out=change)


def _tied(keys: np.ndarray) -> np.ndarray:
    """Positions of sorted ``keys`` equal to a neighbour."""
    if len(keys) < 2:
        return np.empty(0, dtype=np.int64)
    same = keys[1:] == keys[:-1]
    tied = np.zeros(len(keys), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    return np.flatnonzero(tied)


# --------------------------------------------------------------------------- plain
class PlainText(TextColumn):
    """The rows' strings themselves (an Arrow-backed pandas string array)."""

    kind = "plain"

    def __init__(self, values: Any) -> None:
        import pyarrow as pa

        self.values = values
        arr = pa.array(values) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
        self.chunked = _chunked(arr)
        self._order: dict[bool, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.chunked)

    def arrow(self) -> Any:
        return self.chunked

    def missing(self) -> np.ndarray:
        import pyarrow.compute as pc

        return _to_numpy(pc.is_null(self.chunked))

    def compare(self, op: str, value: str) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        binary = self.binary()
        scalar = pa.scalar(_encode(value), type=binary.type)
        func = {"==": pc.equal, "!=": pc.equal, "<": pc.less, "<=": pc.less_equal}.get(op)
        func = func or {">": pc.greater, ">=": pc.greater_equal}[op]
        mask = _mask(func(binary, scalar))
        return np.logical_not(mask, out=mask) if op == "!=" else mask

    def isin(self, values: Sequence[str]) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        binary = self.binary()
        wanted = pa.array(sorted({_encode(v) for v in values}), type=binary.type)
        return _mask(pc.is_in(binary, value_set=wanted))

    def contains(self, needles: Sequence[str]) -> np.ndarray:
        out = np.empty(len(self), dtype=bool)
        at = 0
        for chunk in self._steps():  # a folded copy of one step at a time
            out[at : at + len(chunk)] = _mask(_substring_hits(casefold(chunk), needles))
            at += len(chunk)
        if self.chunked.null_count:
            out &= ~self.missing()
        return out

    def sort_order(self, *, ascending: bool = True) -> np.ndarray:
        order = self._order.get(ascending)
        if order is None:
            order = self._order[ascending] = sort_strings(self.chunked, ascending=ascending)
        return order

    def take(self, ids: np.ndarray) -> Any:

        return plain(take(self.chunked, ids))

    def groups(self) -> tuple[np.ndarray, Any]:
        """Codes by equal value, found by a 64-bit hash of each row and one numpy sort.

        The same codes and values as Arrow's ``dictionary_encode`` (first
        appearance order). Rows that share a hash with their neighbour in hash
        order are compared as strings, so the grouping is exact: a collision
        falls back to Arrow's encoder. The sort sorts packed values, not
        indices (:func:`_sort_hashes`); the arrays here are int32/int64 per row,
        freed as soon as the next one is made.
        """
        import pyarrow.compute as pc

        n = len(self)
        keys = row_hashes(self.chunked)
        valid = np.flatnonzero(~self.missing()) if self.chunked.null_count else None
        if valid is not None:
            keys = keys[valid]
        rows, keys = _sort_hashes(keys)
        new = np.empty(len(keys), dtype=bool)
        new[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=new[1:])
        del keys
        if valid is not None:
            rows = valid[rows]
            del valid
        same = np.flatnonzero(~new)  # positions sharing a hash with the one before
        binary = self.binary()
        for i in range(0, len(same), _STEP):  # compared as strings, a step at a time
            at = same[i : i + _STEP]
            equal = pc.equal(take(binary, rows[at]), take(binary, rows[at - 1]))
            if not pc.all(equal).as_py():  # a collision: exactness first
                return self._arrow_groups()
        del same
        # number the values by first appearance, as Arrow's encoder does: the first
        # row of each group, ranked by a pass over a row-sized flag array
        group = np.cumsum(new, dtype=np.int32) - 1
        first = np.minimum.reduceat(rows, np.flatnonzero(new)) if len(rows) else rows
        del new
        flag = np.zeros(n, dtype=bool)
        flag[first] = True
        rank = np.cumsum(flag, dtype=np.int32) - 1
        by_group = rank[first]
        del rank, first
        codes = np.full(n, -1, dtype=np.int32)
        codes[rows] = by_group[group]
        del rows, group, by_group
        dictionary = take(self.chunked, np.flatnonzero(flag))
        return codes, dictionary

    def _arrow_groups(self) -> tuple[np.ndarray, Any]:
        # Arrow's hash encoder, without a Categorical (whose uniqueness check
        # would make every distinct value a Python str)
        import pyarrow as pa
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(self.chunked).unify_dictionaries()
        dictionary = (
            encoded.chunk(0).dictionary if encoded.num_chunks else pa.array([], pa.string())
        )
        codes = np.empty(len(self), dtype=np.int32)
        at = 0
        for chunk in encoded.chunks:
            codes[at : at + len(chunk)] = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            at += len(chunk)
        del encoded
        pa.default_memory_pool().release_unused()  # the encoder's hash table
        return codes, dictionary

    def _steps(self) -> Any:
        for chunk in self.chunked.chunks:
            for i in range(0, len(chunk), _STEP):
                yield chunk.slice(i, _STEP)


def _sort_hashes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(rows, keys[rows])`` with equal keys adjacent, rows increasing within them.

    Sorts values, not indices: each key's top bits above its position's ``b`` bits
    make one uint64, and ``np.sort`` on those (SIMD) is about 9x faster than
    ``np.argsort`` of the keys at 10M rows. Keys that differ only in their low
    ``b`` bits end up in one run of equal top bits; those few runs (about
    ``n**2 / 2**(65 - b)`` at random) are ordered again by the whole key.
    """
    n = len(keys)
    if n < 2:
        return np.arange(n), keys.copy()
    b = max(1, (n - 1).bit_length())
    low = np.uint64((1 << b) - 1)
    packed = keys & ~low
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    rows = (packed & low).astype(np.intp)
    packed >>= np.uint64(b)  # the top bits, now in sorted order
    same_top = packed[1:] == packed[:-1]
    del packed
    ordered = keys[rows]
    mixed = np.flatnonzero(same_top & (ordered[1:] != ordered[:-1]))
    if mixed.size:  # runs whose top bits tie but keys differ: order them by key
        begins = np.flatnonzero(np.concatenate([[True], ~same_top]))
        ends = np.append(begins[1:], n)
        which = np.unique(np.searchsorted(begins, mixed, side="right") - 1)
        lengths = ends[which] - begins[which]
        run = np.repeat(which, lengths)
        # the positions of those runs, one arange each, made at once
        pos = np.arange(run.size) + np.repeat(begins[which] - np.cumsum(lengths) + lengths, lengths)
        order = np.lexsort((rows[pos], ordered[pos], run))
        rows[pos] = rows[pos[order]]
        ordered[pos] = ordered[pos[order]]
    return rows, ordered


# --------------------------------------------------------------------------- dictionary
def _categories(cat: pd.Categorical) -> Any:
    """A Categorical's categories as one pyarrow (large_)string array."""
    import pyarrow as pa

    cats = cat.categories
    if _string_dtype(cats.dtype):
        arr = pa.array(cats.array)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    texts = [c if isinstance(c, str) else str(c) for c in np.asarray(cats, dtype=object)]
    return pa.array(texts, type=pa.large_string())


class _ArrowBytes(Sequence):  # type: ignore[type-arg]
    """An Arrow binary array as a sequence of bytes, for :mod:`bisect`."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: Any) -> Any:
        return self.array[i].as_py()


class DictText(TextColumn):
    """Codes and distinct values (a Categorical).

    Predicates run once over the distinct values, with Arrow compute or a binary
    search of the sorted values, and reach the rows through the codes: no
    per-row Python, a few nanoseconds per row. Each part is made on first use
    and kept while the column lives.
    """

    kind = "dictionary"

    def __init__(self, values: pd.Categorical) -> None:
        import pyarrow as pa

        self.values = values
        self.codes = np.asarray(values.codes)
        cats = values.categories
        try:  # zero-copy for pandas' Arrow-backed strings
            self.dictionary = _categories(values)
            self.distinct = self.dictionary.cast(
                pa.large_binary() if pa.types.is_large_string(self.dictionary.type) else pa.binary()
            )
        except (pa.ArrowException, UnicodeError, TypeError, ValueError):
            texts = [c if isinstance(c, str) else str(c) for c in np.asarray(cats, dtype=object)]
            self.distinct = pa.array([_encode(t) for t in texts], type=pa.binary())
            self.dictionary = None  # text Arrow cannot hold (lone surrogates)
        self._folded: Any = None
        self._sorted: Any = None
        self.order: np.ndarray | None = None  # sorted position -> category (None: sorted)
        self.rank: np.ndarray | None = None  # category -> sorted position

    def __len__(self) -> int:
        return len(self.codes)

    def arrow(self) -> Any:
        import pyarrow as pa

        codes = self.codes
        dictionary = self.dictionary
        if dictionary is None:
            dictionary = pa.array([b.decode("utf-8", "replace") for b in self.distinct.to_pylist()])
        return dictionary.take(pa.array(codes, mask=codes < 0))

    def binary(self) -> Any:
        import pyarrow as pa

        codes = self.codes
        return self.distinct.take(pa.array(codes, mask=codes < 0))

    def strings(self, ids: np.ndarray) -> list[str | None]:
        import pyarrow as pa

        codes = self.codes[np.asarray(ids, dtype=np.int64)]
        # only the page's categories become Python strs
        if self.dictionary is None:
            cats = np.asarray(self.values.categories, dtype=object)
            return [None if c < 0 else str(cats[c]) for c in codes.tolist()]
        return self.dictionary.take(pa.array(codes, mask=codes < 0)).to_pylist()

    def head(self, rows: np.ndarray | None, *, ascending: bool, k: int) -> np.ndarray:
        key = self._sort_key(ascending)
        if rows is None:
            return np.argsort(key, kind="stable")[:k].astype(np.int64)
        rows = np.asarray(rows, dtype=np.int64)
        return rows[np.argsort(key[rows], kind="stable")[:k]]

    def missing(self) -> np.ndarray:
        return self.codes < 0

    @property
    def folded(self) -> Any:
        """Case-folded distinct values, for ``contains``."""
        if self._folded is None:
            import pyarrow as pa

            source = self.dictionary
            if source is None:
                texts = [b.decode("utf-8", "surrogatepass") for b in self.distinct.to_pylist()]
                self._folded = pa.array([_encode(t.casefold()) for t in texts], type=pa.binary())
            else:
                self._folded = casefold(source)
        return self._folded

    @property
    def sorted(self) -> Any:
        """The distinct values in byte (= code point) order; sets ``order`` and ``rank``."""
        if self._sorted is None:
            import pyarrow.compute as pc

            k = len(self.distinct)
            if k < 2 or pc.all(pc.less(self.distinct[:-1], self.distinct[1:])).as_py():
                self._sorted = self.distinct  # codes are already ranks
            else:
                order = pc.array_sort_indices(self.distinct).to_numpy().astype(np.int64)
                rank = np.empty(k, dtype=np.int64)
                rank[order] = np.arange(k)
                self.order, self.rank = order, rank
                self._sorted = self.distinct.take(order)
        return self._sorted

    def bounds(self, value: str) -> tuple[int, int]:
        """Sorted positions ``[lo, hi)`` equal to ``value``: lo values are smaller."""
        keys = _ArrowBytes(self.sorted)
        key = _encode(value)
        lo = bisect.bisect_left(keys, key)
        hi = lo
        while hi < len(keys) and keys[hi] == key:  # several only for non-text categories
            hi += 1
        return lo, hi

    def _rank_rows(self, low: int, high: int) -> np.ndarray:
        """Rows whose value's sorted position is in ``[low, high)``; missing rows never."""
        codes = self.codes
        k = len(self.distinct)
        low, high = max(low, 0), min(high, k)
        if low >= high:
            return np.zeros(len(codes), dtype=bool)
        self.sorted  # noqa: B018 (sets self.rank)
        if self.rank is None:  # sorted: codes are positions; one pass over the codes
            if high - low == 1:
                return codes == low
            if low == 0:  # missing (-1) is the largest unsigned code
                return codes.view(codes.dtype.str.replace("i", "u")) < high
            if high == k:
                return codes >= low
            return (codes >= low) & (codes < high)
        hits = (self.rank >= low) & (self.rank < high)
        return self._take_codes(hits)

    def _take_codes(self, hits: np.ndarray, missing: bool = False) -> np.ndarray:
        """Map a per-value result onto rows; missing rows (code -1) get ``missing``."""
        lookup = np.append(hits, missing)  # code -1 indexes the appended slot
        return np.take(lookup, self.codes)

    def compare(self, op: str, value: str) -> np.ndarray:
        lo, hi = self.bounds(value)
        k = len(self.distinct)
        if op in ("==", "!="):
            mask = self._rank_rows(lo, hi)
            return np.logical_not(mask, out=mask) if op == "!=" else mask
        low, high = {"<": (0, lo), "<=": (0, hi), ">": (hi, k), ">=": (lo, k)}[op]
        return self._rank_rows(low, high)

    def isin(self, values: Sequence[str]) -> np.ndarray:
        self.sorted  # noqa: B018 (sets self.order)
        hits = np.zeros(len(self.distinct), dtype=bool)
        for value in set(values):
            lo, hi = self.bounds(value)
            hits[lo:hi] = True
        if self.order is not None:  # sorted positions -> categories
            hits = hits[self.rank]
        found = np.flatnonzero(hits)
        if len(found) <= 4:  # a few values: passes over the codes beat a table lookup
            mask = np.zeros(len(self.codes), dtype=bool)
            for code in found:
                mask |= self.codes == code
            return mask
        return self._take_codes(hits)

    def contains(self, needles: Sequence[str]) -> np.ndarray:
        return self._take_codes(_to_numpy(_substring_hits(self.folded, needles)))

    def ranks(self) -> np.ndarray:
        """Each category's position in byte order."""
        self.sorted  # noqa: B018
        return np.arange(len(self.distinct)) if self.rank is None else self.rank

    def _sort_key(self, ascending: bool) -> np.ndarray:
        """Each row's sorted position among the values (missing: after all of them)."""
        k = len(self.distinct)
        rank = self.ranks()
        if not ascending:
            rank = k - 1 - rank
        lookup = _small(np.append(rank, k))  # missing (code -1) after every value
        return np.take(lookup, self.codes)

    def sort_order(self, *, ascending: bool = True) -> np.ndarray:
        # a small-int key: numpy's stable sort is a radix sort for 8 and 16 bits
        return np.argsort(self._sort_key(ascending), kind="stable").astype(np.int64, copy=False)

    def take(self, ids: np.ndarray) -> Any:
        return self.values.take(np.asarray(ids, dtype=np.int64))

    def groups(self) -> tuple[np.ndarray, Any]:
        if self.dictionary is None:
            import pyarrow as pa

            texts = [b.decode("utf-8", "replace") for b in self.distinct.to_pylist()]
            return self.codes, pa.array(texts, type=pa.large_string())
        return self.codes, self.dictionary

    def _steps(self) -> Any:
        import pyarrow as pa

        dictionary = self.dictionary
        if dictionary is None:  # text Arrow cannot hold: its UTF-8 with surrogatepass
            dictionary = self.distinct.cast(pa.large_binary())
        for i in range(0, len(self.codes), _STEP):
            codes = self.codes[i : i + _STEP]
            yield dictionary.take(pa.array(codes, mask=codes < 0))


# --------------------------------------------------------------------------- two columns
class TextPair:
    """Two text columns compared row by row (``a < b``), built once per pair of columns."""

    def __init__(self, a: TextColumn, b: TextColumn) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.missing = a.missing() | b.missing()
        self.columns = (a, b)
        self.a = self.b = None
        if isinstance(a, DictText) and isinstance(b, DictText):
            # ranks in the union of the distinct values: then integer comparisons
            ranks = pc.rank(
                pa.concat_arrays([_bin(a.distinct), _bin(b.distinct)]), tiebreaker="dense"
            )
            ranks = ranks.to_numpy().astype(np.int64)
            k = len(a.distinct)
            self.a = np.take(np.append(ranks[:k], 0), a.codes)  # code -1: the 0 slot
            self.b = np.take(np.append(ranks[k:], 0), b.codes)

    def compare(self, op: str) -> np.ndarray:
        import pyarrow.compute as pc

        from .query import COMPARE_OPS

        if self.a is not None:
            out = np.asarray(COMPARE_OPS[op](self.a, self.b), dtype=bool)
        else:  # row by row in Arrow (a dictionary column's values taken by code)
            a, b = self.columns
            x, y = _bin(a.binary()), _bin(b.binary())
            func = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal}.get(op)
            func = func or {">": pc.greater, ">=": pc.greater_equal}[op]
            out = _mask(func(x, y))
        if op == "!=":
            return np.logical_or(out, self.missing, out=out)
        return np.logical_and(out, ~self.missing, out=out)


def _bin(arr: Any) -> Any:
    """Binary of either offset width as large_binary (so two columns compare)."""
    import pyarrow as pa

    return arr.cast(pa.large_binary())


def compare_columns(a: TextColumn, op: str, b: TextColumn) -> np.ndarray:
    """``a op b`` row by row (missing on either side: only ``!=`` holds)."""
    return TextPair(a, b).compare(op)


# --------------------------------------------------------------------------- the cache
_CACHE: dict[int, tuple[Any, TextColumn]] = {}
_LOCK = threading.Lock()


def as_text(values: Any) -> TextColumn:
    """The :class:`TextColumn` of a text column, kept while the column lives.

    ``values`` is a Categorical, an Arrow-backed (or any pandas) string array, a
    Series of either, a pyarrow string array, or an array-like of strings
    (made a Categorical, as filters over user arrays always did).
    """
    import pyarrow as pa

    if isinstance(values, TextColumn):
        return values
    if isinstance(values, pd.Series):
        values = values.array
    key = id(values)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is values:
            return hit[1]
    if isinstance(values, pd.Categorical):
        text: TextColumn = DictText(values)
    elif isinstance(values, (pa.Array, pa.ChunkedArray)) or is_text(values):
        text = PlainText(values)
    else:
        return DictText(pd.Categorical(np.asarray(values, dtype=object)))  # not cached: a copy
    try:
        ref = weakref.ref(values, _forget(key))
    except TypeError:  # not weak-referenceable: not cached
        return text
    with _LOCK:
        _CACHE[key] = (ref, text)
    return text


def _forget(key: int) -> Callable[[Any], None]:
    cache, lock = _CACHE, _LOCK  # held here: module globals are gone at interpreter exit

    def drop(ref: Any) -> None:
        with lock:
            hit = cache.get(key)
            if hit is not None and hit[0] is ref:
                del cache[key]

    return drop
