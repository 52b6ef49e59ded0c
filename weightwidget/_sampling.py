"""Exact weighted draws over a weight vector, in vectorised numpy (no torch, no tensorflow).

The torch samplers (:mod:`weightwidget.samplers`) and the ``tf.data`` export
(:mod:`weightwidget.tf`) share these draws, so one seed gives one sequence of
indices whichever framework consumes it.

With replacement: inverse CDF through a guide table
---------------------------------------------------
Row ``i`` is drawn when ``cdf[i-1] <= u < cdf[i]`` for ``u`` uniform in ``[0,
sum(w))``, with ``cdf = cumsum(w)`` over all rows (a row of weight 0 adds an
empty interval, so it is never drawn and no row ids need remapping). The
result is exactly ``np.searchsorted(cdf, u, side="right")`` (tests check it
at every bucket and row edge), without that call's cache misses: a binary
search over 1e8 doubles costs about 2 us per unsorted draw.

A guide table cuts ``[0, sum(w))`` into ``n`` buckets of equal probability
and stores, per bucket, the first row it can reach and, in the entry's spare
low bits, where that row ends inside the bucket. One gather from the guide
then settles about 70% of draws (skewed weights) without reading ``cdf``; the
rest gather two neighbouring ``cdf`` values at once and step on, about two
rows on average. Each draw thus costs one random access into an n-long array
and a few vectorised passes over a chunk of 65,536 draws, whatever the skew;
the draws come out in random order, so no shuffle is needed. The lookups run
on unsorted uniforms: sorting each chunk first makes the accesses monotone but
costs more than it saves, and an epoch drawn sorted then shuffled needs a
random permutation, which is itself a random access per draw. Walker's alias
method also needs one access per draw, but its construction is several times
slower and it would not equal the inverse CDF (the benchmark measures it).

Large epochs are drawn by threads (:func:`_draws_ahead`): a producer draws
blocks a few ahead of the consumer and splits each block's lookups with helper
threads. numpy releases the GIL in the lookups, so on two cores they overlap
each other and the Python loop that turns indices into ints for a DataLoader,
which at 1e8 costs as much as the lookups. Between two numpy calls a lookup
needs the GIL back, which a busy consumer gives up only every
``sys.getswitchinterval()``: blocks are long (up to 4M draws) to make few
calls per draw, and the interval is lowered to 1 ms while a block is drawn
(:func:`._threads.quick_switches`; at 1e8 draws 6.4 s became 5.8 s). The
uniforms are drawn in order by one thread, so the draws do not depend on the
threads.

Building costs the running sum ``cdf``, one chunked pass that counts rows per
bucket, and one that packs the row ends. The running sum is bound by the
latency of each addition, so it is computed in two halves at once and the
first half's total is then added to the second, chunk by chunk while the
rows are in cache for the guide (0.4 s to 0.2 s at 1e8 rows on two cores;
the halves depend only on the number of rows, so the ``cdf`` is the same
whatever the threads). The two passes are single-threaded: they are bound by
arithmetic, and split among two threads by ranges of rows they ran no faster
on two cores. ``cdf`` (float64) and ``guide`` (int32 below 2**30 rows) take 12
bytes per row. "Exact" means exact up to the float64 rounding of the running
sum: each row's probability is off by at most a few ulps of the total (float32
would be visibly wrong near 2**24 rows). There is no cap on the number of rows
(torch raises "number of categories cannot exceed 2^24").

Without replacement: Efraimidis-Spirakis keys
---------------------------------------------
Row ``i`` gets the key ``E_i / w_i`` with ``E_i`` standard exponential; the
``k`` smallest keys, in increasing order, are distributed exactly as ``k``
successive draws without replacement, each proportional to the remaining
weights. For weights beyond 1e±290 we rank ``log(E_i) - log(w_i)`` instead: the
same order, without overflow. When at most half the weights are 0 every row
keeps its place and rows of weight 0 get a key above all others (no gather of
the non-zero rows, no mapping back); otherwise only the non-zero rows are
ranked.

Ranking is the slow part (``argsort`` of 1e7 doubles moves indices around
memory). We sort values instead: each key's order-preserving bit pattern,
minus the smallest, keeps its top ``64 - b`` bits above a ``b``-bit row
position, and ``np.sort`` on those uint64 values (SIMD) orders keys and carries
positions along. Keys that tie after truncation are reordered by their full
float64 value, so the order is the order of the exact keys. When only ``k <=
n / 8`` keys are needed, ``np.argpartition`` finds them first and only those
are sorted.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _threads
from ._checks import check_weight_counts
from .protocol import SamplerOptions, WeightSource, as_source, effective_weights

if TYPE_CHECKING:
    from numpy.random import Generator

__all__ = [
    "Plan",
    "Prepared",
    "draw_with_replacement",
    "draw_without_replacement",
    "epoch_chunks",
    "epoch_rng",
    "epoch_sequence",
    "make_plan",
    "prepare",
    "sample_weight",
    "shuffled",
    "smallest_keys",
]

# Neighbouring cdf values gathered at once while searching past a guide row (the
# code counts two), and rounds before a draw that is still short (a bucket holding
# many tiny weights) falls back to a binary search.
_WINDOW = 2
_MAX_WINDOWS = 8
# Draws are made this many at a time, so scratch arrays stay small and reused.
_CHUNK = 1 << 16
# From this many draws on, blocks of up to _BLOCK draws are looked up by worker threads,
# at most _AHEAD blocks ahead of the consumer (see _draws_ahead).
_THREADED_DRAWS = 1 << 21
_BLOCK = 1 << 22
_AHEAD = 2
# Rows per chunk while building the guide table (small scratch arrays, in cache).
_BUILD_CHUNK = 1 << 16
# Below this many rows the guide is int32 (half the memory of int64).
_INT32_ROWS = 1 << 30
# At most this many low bits of a guide entry say where its row ends.
_MAX_FRACTION_BITS = 16
_SIGN = np.uint64(1 << 63)


@dataclass(frozen=True)
class Prepared:
    """The rows of a weight vector that can be drawn, ready for repeated draws.

    Attributes
    ----------
    n_rows : int
        Length of the weight vector, zeros included.
    n_labelled : int
        Rows that could be trained on (labelled); the default draw count with
        ``exclude_zero_weights=False``.
    n_nonzero : int
        Rows with a non-zero weight.
    rows : numpy.ndarray of intp or None
        Row ids with a non-zero weight, increasing, when most weights are 0;
        None when position ``j`` is row ``j`` (and when indexed).
    weights : numpy.ndarray of float64
        The weight of each position: the non-zero weights aligned with ``rows``,
        or every row's weight, zeros included, when ``rows`` is None (empty if
        indexed).
    keys_in_range : bool
        Whether ``E / w`` stays a normal float for every non-zero weight (``E <=
        1e3``); if not, draws without replacement rank ``log(E) - log(w)``.
    cdf : numpy.ndarray of float64
        Running sum of all ``n_rows`` weights (summed in two halves, see the
        module notes); ``cdf[-1]`` is the total weight (empty if not indexed).
    guide : numpy.ndarray of int32 (int64 from 2**30 rows)
        ``n_rows + 1`` entries: ``guide[j] >> guide_bits`` is the number of rows
        whose ``cdf`` lies below bucket ``j``; the low bits say where that row
        ends in the bucket (see ``_guide_table``; empty if not indexed).
    guide_bits : int
        Low bits of each ``guide`` entry that hold the row's end.
    windows : numpy.ndarray of void
        ``windows[i]`` holds ``cdf[i]`` and the next value (``inf`` past the
        end) as one item: a strided view of the memory of ``cdf``.
    """

    n_rows: int
    n_labelled: int
    rows: np.ndarray | None
    weights: np.ndarray
    cdf: np.ndarray
    guide: np.ndarray
    n_nonzero: int
    guide_bits: int
    windows: np.ndarray
    keys_in_range: bool

    def row_ids(self) -> np.ndarray:
        """Row ids with a non-zero weight, increasing (of a ``prepare(index=False)``)."""
        if self.cdf.size:
            raise ValueError("row_ids() needs prepare(weights, index=False)")
        if self.rows is not None:
            return self.rows
        if self.n_nonzero < self.n_rows:
            return np.flatnonzero(self.weights)
        return np.arange(self.n_rows)

    def to_rows(self, pos: np.ndarray) -> np.ndarray:
        """Map positions among the non-zero rows to row ids, in place."""
        if self.rows is not None:
            np.take(self.rows, pos, out=pos, mode="clip")
        return pos


def prepare(
    weights: np.ndarray, *, copy: bool = True, index: bool = True, n_labelled: int | None = None
) -> Prepared:
    """Index the non-zero weights for exact draws.

    Parameters
    ----------
    weights : numpy.ndarray of shape (n_samples,), float64
        Valid weights (from :func:`weightwidget.protocol.effective_weights`, which
        checks them); rows with weight 0 are never drawn.
    copy : bool, default=True
        Keep a private copy of the weights (needed by draws without
        replacement, so that a later in-place change of the caller's array
        cannot leak in). With False, ``Prepared.weights`` may be the caller's array.
    index : bool, default=True
        Build ``cdf`` and ``guide`` (needed for draws with replacement only).
    n_labelled : int, default=None
        Rows that could be trained on; None means all rows.

    Returns
    -------
    Prepared

    Raises
    ------
    ValueError
        If all weights are 0.
    """
    w = np.asarray(weights, dtype=np.float64)
    n_nonzero = int(np.count_nonzero(w))  # weights are >= 0: non-zero means > 0
    if n_nonzero == 0:
        raise ValueError(
            f"all {w.size} weights are 0, so there is nothing to draw; include some rows "
            "(set a weight > 0) before sampling"
        )
    if index:  # draws with replacement need neither the non-zero ids nor their weights
        rows, wz = None, np.empty(0)
    elif 2 * n_nonzero >= w.size:
        # Mostly non-zero: keep every row in place (weight-0 rows get key +inf, see
        # draw_without_replacement). Ranking those few extra keys costs less than
        # gathering the non-zero rows here and mapping positions back every epoch.
        rows, wz = None, (_threads.copy(w) if copy else w)
    else:
        rows = np.flatnonzero(w)
        wz = w[rows]
    if index:
        in_range = True
    else:  # no non-zero weight at most 1e-290 (zeros are exactly the small ones), none huge
        small = np.count_nonzero(wz <= 1e-290)
        in_range = small == wz.size - n_nonzero and bool(wz.max() < 1e290)
    n_lab = int(w.size) if n_labelled is None else int(n_labelled)
    if index:
        cdf, windows, guide, bits = _guide_table(w)
    else:
        cdf, windows, guide, bits = np.empty(0), np.empty(0), np.empty(0, np.intp), 0
    return Prepared(
        n_rows=int(w.size),
        n_labelled=n_lab,
        rows=rows,
        weights=wz,
        cdf=cdf,
        guide=guide,
        n_nonzero=n_nonzero,
        guide_bits=bits,
        windows=windows,
        keys_in_range=in_range,
    )


def _guide_table(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return the running sum ``cdf`` of ``w``, its windows, the packed guide and its fraction bits.

    Bucket ``j`` covers ``[j, j + 1) * total / m`` of the draws' range. Row ``i``
    falls in bucket ``b_i = trunc(cdf[i] * s)`` and the guide row ``G[j]``
    counts the rows with ``b_i < j``. The scale ``s`` is ``m / total`` raised by
    a margin of 2**-45 (relative), far above the few ulps that rounding in ``u
    * m``, ``u * total`` and ``cdf * s`` can move a value: so a draw in bucket
    ``j`` lies at or after ``cdf[G[j] - 1]`` and searching from ``G[j]`` never
    skips its answer, with no per-draw check of the bucket edges. There are
    ``m + 1`` entries because ``fl(u * m)`` may round up to ``m``. Buckets
    never decrease along the rows, so each chunk of rows settles the entries up
    to its last bucket (``bincount`` and ``cumsum`` of its bucket counts) and
    packs them while those rows are in cache: besides ``cdf``, no n-long
    temporary is made.

    The guide's spare low bits (``bits``: 4 at 1e8 rows, 7 at 1e7) hold ``q[j]``,
    where row ``G[j]`` ends inside bucket ``j`` rounded down to ``1 / L``, ``L =
    2**bits - 1`` (``L`` when it covers the whole bucket). A draw at fraction
    ``f`` of its bucket with ``f * L < q[j]`` lies below ``cdf[G[j]]``, so its
    answer is ``G[j]`` without reading ``cdf`` at all: about 70% of draws for
    skewed weights, which saves one random access into an n-long array. ``q``
    is lowered by a margin, so "below" is certain; near the edge the draw just
    takes the exact path.
    """
    m = w.size
    padded = _threads.mapped(m + _WINDOW - 1)  # first written by the cumsum (see _threads)
    padded[m:] = np.inf  # past the last row: never at most a draw's point
    cdf = padded[:m]
    # The cumsum runs in two halves at once (it is bound by the latency of each add,
    # so it halves on two cores); the second half's partial sums get the first
    # half's total added chunk by chunk below. The split depends only on m, so the
    # cdf, and every draw, are the same whatever the threads.
    half = (m // 2) // _BUILD_CHUNK * _BUILD_CHUNK
    if half:
        _threads.each(_cumsum, [(w[:half], cdf[:half]), (w[half:], cdf[half:])])
    else:  # under two chunks of rows: not worth a thread
        np.cumsum(w, out=cdf)
    carry = cdf[half - 1] if half else 0.0
    total = carry + cdf[-1]
    # windows[i] is the _WINDOW values from cdf[i] on, as one item: a view, no copy
    windows = np.ndarray(buffer=padded, dtype=f"V{8 * _WINDOW}", shape=(m,), strides=(8,))
    if total < 2.0**-960:
        # A tiny total would make m / total overflow and u * total subnormal (it could
        # round up to the total). Multiplying by a power of two is exact, so the
        # scaled cdf orders every draw as the unscaled one does.
        cdf[half:] += carry
        np.ldexp(cdf, -np.frexp(cdf[-1])[1], out=cdf)
        carry, total, half = 0.0, cdf[-1], m
    dtype = np.int32 if m < _INT32_ROWS else np.int64  # room for m and a spare bit
    bits = min(np.iinfo(dtype).bits - 1 - m.bit_length(), _MAX_FRACTION_BITS)
    guide = _threads.zeros(m + 1, dtype=dtype)  # see the cdf
    scale = m / total * (1.0 + 2.0**-45)
    bucket, tmp = np.empty(_BUILD_CHUNK, dtype=np.intp), np.empty(_BUILD_CHUNK)
    done = 0  # guide[:done] is final
    for start in range(0, m, _BUILD_CHUNK):
        part = cdf[start : start + _BUILD_CHUNK]
        if start >= half:
            part += carry  # while the rows are in cache
        b, t = bucket[: part.size], tmp[: part.size]
        np.multiply(part, scale, out=t)
        np.copyto(b, t, casting="unsafe")  # trunc == floor: cdf >= 0
        low, high = int(b[0]), int(b[-1])  # at most m
        # Later rows lie in bucket `high` or after, so entries up to `high` are final:
        # up to `low`, `start` rows lie below; after it, those plus this chunk's.
        guide[done : low + 1] = start
        if high > low:
            b -= low
            counts = np.bincount(b)  # rows per bucket low, low + 1, ...
            seg = guide[low + 1 : high + 1]
            np.cumsum(counts[: high - low], out=seg)
            seg += start
        if bits:
            _pack_fractions(cdf, guide[done : high + 1], done, bits, total)  # rows in cache
        done = high + 1
    guide[done:] = m
    if bits:
        _pack_fractions(cdf, guide[done:], done, bits, total)
    return cdf, windows, guide, bits


def _cumsum(values: np.ndarray, out: np.ndarray) -> None:
    np.cumsum(values, out=out)


def _pack_fractions(
    cdf: np.ndarray, guide: np.ndarray, first: int, bits: int, total: float
) -> None:
    """Pack ``q`` (see :func:`_guide_table`) below the rows of entries ``first, first + 1, ...``."""
    m, top = cdf.size, (1 << bits) - 1
    # Scale lowered by 2**-40 and q lowered by 2**-8 of a level: both far above the
    # rounding here and in the draws, so f * L < q proves u * total < cdf[G[j]].
    scale = m / total * (1.0 - 2.0**-40) * top
    for start in range(0, guide.size, _BUILD_CHUNK):  # small temporaries
        g = guide[start : start + _BUILD_CHUNK]
        e = np.take(cdf, g, mode="clip")  # G[j] = m reads the total: q = 0 there
        e *= scale
        j = first + start
        e -= np.arange(j * top + 2.0**-8, (j + g.size) * top, top)[: g.size]
        np.clip(e, 0, top, out=e)
        g <<= bits
        g |= e.astype(g.dtype)  # trunc == floor after the clip


def epoch_rng(seed: int, epoch: int) -> Generator:
    """Return the generator for ``(seed, epoch)``: same pair, same draws, on every rank."""
    return np.random.default_rng([int(seed), int(epoch)])


def draw_with_replacement(prep: Prepared, k: int, rng: Generator) -> np.ndarray:
    """Draw ``k`` row ids independently, each with probability ``w_i / sum(w)``.

    Parameters
    ----------
    prep : Prepared
        From :func:`prepare` (with ``index=True``).
    k : int
        Number of draws.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray of shape (k,), intp
        Row ids in draw order. Equals ``np.searchsorted(cdf, rng.random(k) *
        cdf[-1], side="right")`` exactly, computed in chunks so temporaries stay
        small and reused.
    """
    out = np.empty(k, dtype=np.intp)
    for start, chunk in _draws(prep, k, rng, _CHUNK):
        out[start : start + chunk.size] = chunk
    return out


def _draws(prep: Prepared, k: int, rng: Generator, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, draws)`` for ``k`` draws, ``chunk`` at a time (reused buffers).

    Large epochs are drawn by worker threads a few blocks ahead of the consumer
    (see :func:`_draws_ahead`); the draws are the same either way.
    """
    if prep.cdf.size == 0:
        raise ValueError("draws with replacement need prepare(weights, index=True)")
    chunk = max(1, min(k, chunk))
    threads = _threads.count() if k >= _THREADED_DRAWS else 1
    if threads > 1:
        yield from _draws_ahead(prep, k, rng, chunk, threads)
        return
    scratch = _Scratch(chunk, prep.guide.dtype)
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        yield start, _draw_chunk(prep, rng, scratch, size)


def _draws_ahead(
    prep: Prepared, k: int, rng: Generator, chunk: int, threads: int
) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`_draws` with the blocks drawn by ``threads`` threads, up to ``_AHEAD`` blocks ahead.

    A producer thread takes each block's uniforms from ``rng``, in order (so
    the draws equal the sequential ones), and splits its lookups with helper
    threads; meanwhile the consumer works through earlier blocks. numpy
    releases the GIL in the lookups, so they overlap each other and the
    consumer's Python loop (turning indices into ints for a DataLoader: as long
    as the lookups themselves at 1e8). Blocks cycle through ``_AHEAD + 1``
    buffers: the consumer holds one, and the producer refills one only after
    the consumer has asked for the block after it. Closing the generator (or
    dropping it) stops the producer after its current block; ``rng`` is then
    left at an unspecified state.
    """
    per_block = max(1, _BLOCK // chunk) * chunk
    size = min(per_block, k)
    ready: queue.SimpleQueue = queue.SimpleQueue()  # (start, n, block), an error, or None
    free: queue.SimpleQueue = queue.SimpleQueue()  # blocks the consumer is done with
    for _ in range(_AHEAD + 1):
        free.put(np.empty(size, dtype=np.intp))
    stop = threading.Event()
    part = -(-size // threads)
    scratches = [_Scratch(part, prep.guide.dtype, with_pos=False) for _ in range(threads)]

    def draw_uniforms(_: Prepared, part_u: np.ndarray, *__: Any) -> None:
        rng.random(out=part_u)

    def produce() -> None:
        try:
            u = np.empty(size)
            with _threads.Workers(threads - 1) as workers:
                start = 0
                for n in _block_lengths(k, per_block, chunk):
                    block = free.get()
                    if block is None or stop.is_set():
                        return
                    cuts = [min(n, i * -(-n // threads)) for i in range(threads + 1)]
                    calls = [
                        (prep, u[a:b], block[a:b], scratch)
                        for (a, b), scratch in zip(itertools.pairwise(cuts), scratches, strict=True)
                        if a < b
                    ]
                    # each part's uniforms are drawn, in order, just before it is handed out
                    with _threads.quick_switches():  # the consumer holds the GIL meanwhile
                        workers.run(_lookup, calls, before=draw_uniforms)
                    ready.put((start, n, block))
                    start += n
        except BaseException as error:  # raised again in the consumer
            ready.put(error)
        else:
            ready.put(None)

    producer = threading.Thread(target=produce, name="weightwidget-draws", daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            start, n, block = item
            for first in range(0, n, chunk):
                yield start + first, block[first : min(first + chunk, n)]
            free.put(block)
        producer.join()
    finally:
        if producer.is_alive():  # the consumer stopped early
            stop.set()
            free.put(None)
            producer.join()


def _block_lengths(k: int, longest: int, chunk: int) -> Iterator[int]:
    """Lengths of the blocks of ``k`` draws: doubling from ``longest / 8`` up to ``longest``.

    Long blocks mean fewer numpy calls per draw, and so fewer waits for the GIL
    while the consumer holds it; the first ones are short so that the consumer
    can start early. All but the last are multiples of ``chunk``.
    """
    n = max(chunk, longest // 8 // chunk * chunk)
    start = 0
    while start < k:
        yield min(n, k - start)
        start += n
        n = min(2 * n, longest)


def _lookup(prep: Prepared, u: np.ndarray, out: np.ndarray, b: _Scratch) -> None:
    """Write the inverse CDF of ``u`` (overwritten) to ``out``."""
    _inverse_cdf(prep, u, b, out=out)


class _Scratch:
    """Buffers of one chunk of draws, allocated once per epoch.

    ``u`` and ``pos`` only ``with_pos``: a lookup given its uniforms and ``out`` needs neither.
    """

    def __init__(self, size: int, code_dtype: np.dtype, *, with_pos: bool = True) -> None:
        self.u, self.t = np.empty(size if with_pos else 0), np.empty(size)
        self.pos = np.empty(size if with_pos else 0, dtype=np.intp)
        self.code, self.q = np.empty(size, dtype=code_dtype), np.empty(size, dtype=code_dtype)
        self.sure = np.empty(size, dtype=bool)


def _draw_chunk(prep: Prepared, rng: Generator, b: _Scratch, size: int) -> np.ndarray:
    """Return ``size`` draws (a view of ``b.pos``)."""
    u = b.u[:size]
    rng.random(size, out=u)
    return _inverse_cdf(prep, u, b)


def _inverse_cdf(
    prep: Prepared, u: np.ndarray, b: _Scratch, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Return ``searchsorted(cdf, u * total, side="right")`` for ``u`` in ``[0, 1)``.

    ``u`` is overwritten; the result is ``out``, or a view of ``b.pos``. One
    gather from the guide gives each draw's first candidate row and, for most
    draws, proves it is the answer (see :func:`_guide_table`); the others (about
    30% for skewed weights) search on from that row in :func:`_walk`.
    """
    cdf, guide, bits = prep.cdf, prep.guide, prep.guide_bits
    size = u.size
    t, code, q, sure = (a[:size] for a in (b.t, b.code, b.q, b.sure))
    pos = b.pos[:size] if out is None else out
    np.multiply(u, cdf.size, out=t)
    np.copyto(pos, t, casting="unsafe")  # the bucket of each draw (trunc == floor)
    np.take(guide, pos, out=code)
    if bits:
        top = (1 << bits) - 1
        np.subtract(t, pos, out=t)  # where in its bucket the draw lies, in [0, 1): exact
        t *= top
        np.bitwise_and(code, top, out=q)
        np.less(t, q, out=sure)  # certainly below the end of the guide row
        np.right_shift(code, bits, out=code)
    else:
        sure.fill(False)
    np.copyto(pos, code)  # the guide row
    u *= cdf[-1]  # the point each draw lands on: below the total (see _guide_table)
    rest = np.flatnonzero(np.logical_not(sure, out=sure))
    if rest.size:
        _walk(prep, pos, u, rest)  # the answer is the first row whose cdf exceeds u
    return pos


def _walk(prep: Prepared, pos: np.ndarray, u: np.ndarray, act: np.ndarray) -> None:
    """Move ``pos[act]`` forward to the first row whose ``cdf`` exceeds ``u[act]``.

    ``cdf[pos[act] - 1] <= u[act]`` holds on entry (the search never moves
    back). Each round gathers a window of two neighbouring ``cdf`` values per
    draw in one fancy-indexing pass (``Prepared.windows``: one cache miss, no
    cheaper than gathering one value) and moves past those at most ``u``; the
    draws whose window was all at most ``u`` go round again. Draws still short
    after a few rounds (a bucket holding many tiny weights) finish with one
    binary search each.
    """
    nxt, x = pos[act], u[act]
    for _ in range(_MAX_WINDOWS):
        win = prep.windows[nxt].view(np.float64)
        first, second = win[0::2] <= x, win[1::2] <= x  # columns: long inner loops
        nxt += first  # cdf never decreases, so a true second implies a true first
        nxt += second
        pos[act] = nxt
        more = np.flatnonzero(second)
        if not more.size:
            return
        act, nxt, x = act[more], nxt[more], x[more]
    pos[act] = np.searchsorted(prep.cdf, x, side="right")


def _sortable(keys: np.ndarray, low: float) -> np.ndarray:
    """Map float64 keys to uint64 values in the same order (a new array; -0.0 equals 0.0).

    ``low`` is ``keys.min()``, which the caller has at hand.
    """
    bits = np.add(keys, 0.0, out=_threads.zeros(keys.size)).view(np.uint64)  # -0.0 -> 0.0
    if low >= 0:
        return bits  # non-negative floats already sort as their bit patterns
    flip = (bits.view(np.int64) >> 63).view(np.uint64)  # all ones where negative
    flip |= _SIGN
    bits ^= flip
    return bits


def _sortable_scalar(key: float, low: float) -> int:
    """:func:`_sortable` of one key of an array whose smallest key is ``low``, as an int."""
    return int(_sortable(np.array([key]), low)[0])


def smallest_keys(keys: np.ndarray, k: int) -> np.ndarray:
    """Return the positions of the ``k`` smallest ``keys``, in increasing key order.

    Exactly ``np.argsort(keys, kind="stable")[:k]`` (a test checks it), several
    times faster: see the module notes.

    Parameters
    ----------
    keys : numpy.ndarray of shape (m,), float64
        Keys without NaN; ``+inf`` (a row that must come last) is allowed.
    k : int
        How many, ``1 <= k <= m``.

    Returns
    -------
    numpy.ndarray of shape (k,), int64
    """
    m = keys.size
    if k <= m // 8:  # few: select them with argpartition, then sort just those
        kth = keys[np.argpartition(keys, k - 1)[k - 1]]
        pick = np.flatnonzero(keys <= kth)  # increasing positions, exact ties included
        return pick[np.argsort(keys[pick], kind="stable")[:k]]
    b = max(1, (m - 1).bit_length())  # bits of a position
    low, high = float(keys.min()), float(keys.max())
    packed = _sortable(keys, low)
    low_bits = _sortable_scalar(low, low)
    infinite = high == np.inf
    if infinite:  # rows that must come last: the key range is that of the finite keys
        inf_bits = np.uint64(_sortable_scalar(np.inf, low))
        high_bits = int(np.max(packed, where=packed != inf_bits, initial=low_bits))
    else:
        high_bits = _sortable_scalar(high, low)
    span = high_bits - low_bits
    fit = 64 - b  # key bits beside a position
    drop = max(0, span.bit_length() - fit)  # low key bits that do not fit
    if infinite and (span >> drop) == (1 << fit) - 1:
        drop += 1  # keep one key value above every finite key for +inf
    packed -= np.uint64(low_bits)
    if drop:
        packed >>= np.uint64(drop)
    if infinite:  # +inf: one step above the largest finite key, so never tied with it
        np.minimum(packed, np.uint64((span >> drop) + 1), out=packed)
    packed <<= np.uint64(b)
    for start in range(0, m, _CHUNK):  # add positions without a fresh m-long arange
        part = packed[start : start + _CHUNK]
        part |= np.arange(start, start + part.size, dtype=np.uint64)
    if k <= m - m // 8:  # else sorting the few extra keys costs less than selecting
        packed.partition(k - 1)
        # keys left out may tie the k-th once truncated: keep them for the exact order
        bound = ((int(packed[k - 1]) >> b) + 1) << b
        rest = packed[k:]
        extra = rest[rest < bound] if bound < 2**64 else rest
        packed = np.concatenate([packed[:k], extra])
    packed.sort()  # SIMD sort of uint64 values: several times faster than argsort
    if drop:
        # only runs of ties that reach into the first k matter: they end before the
        # first key above the k-th (the +inf rows, past every finite key, are left out)
        bound = ((int(packed[k - 1]) >> b) + 1) << b
        end = int(np.searchsorted(packed, np.uint64(bound))) if bound < 2**64 else packed.size
        tied = _truncation_ties(packed[:end], b)
    else:
        end, tied = 0, None
    packed &= np.uint64((1 << b) - 1)
    pos = packed.view(np.int64)
    if tied is not None:
        _untie(pos[:end], tied, keys)
    return pos[:k]


def _truncation_ties(packed: np.ndarray, b: int) -> np.ndarray | None:
    """``tied[i]``: sorted ``packed[i]``, ``packed[i + 1]`` share their key bits (None: no ties)."""
    tied = np.empty(max(packed.size - 1, 0), dtype=bool)
    shift = np.uint64(b)
    for start in range(0, tied.size, _CHUNK):  # chunks: small temporaries
        stop = min(start + _CHUNK, tied.size)
        left, right = packed[start:stop] >> shift, packed[start + 1 : stop + 1] >> shift
        np.equal(left, right, out=tied[start:stop])
    return tied if tied.any() else None


def _untie(pos: np.ndarray, tied: np.ndarray, keys: np.ndarray) -> None:
    """Reorder each run of truncation ties in ``pos`` by full key, then position."""
    member = np.zeros(pos.size, dtype=bool)
    member[:-1] |= tied
    member[1:] |= tied
    at = np.flatnonzero(member)
    starts = np.ones(at.size, dtype=bool)  # a run starts where it is not tied to the left
    inner = at > 0
    starts[inner] = ~tied[at[inner] - 1]
    run = np.cumsum(starts)
    sub = pos[at]
    pos[at] = sub[np.lexsort((sub, keys[sub], run))]


def draw_without_replacement(prep: Prepared, k: int, rng: Generator) -> np.ndarray:
    """Draw ``k`` distinct row ids, as ``k`` successive draws proportional to the remaining weights.

    Parameters
    ----------
    prep : Prepared
        From :func:`prepare`.
    k : int
        Number of draws; at most ``prep.n_nonzero``.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray of shape (k,), intp
        Distinct row ids in draw order (increasing Efraimidis-Spirakis key).
    """
    if k > prep.n_nonzero:
        raise ValueError(
            f"cannot draw {k} distinct rows: only {prep.n_nonzero} rows have a non-zero weight"
        )
    w = prep.weights
    keys = rng.standard_exponential(out=_threads.zeros(w.size))
    with np.errstate(divide="ignore", invalid="ignore"):  # weight 0: set just below
        if prep.keys_in_range:
            keys /= w
        else:  # same order as E / w, without overflow or underflow for extreme weights
            np.log(keys, out=keys)
            keys -= np.log(w)
    if w.size > prep.n_nonzero:
        # Rows of weight 0 are kept in place (see prepare) and must rank after every
        # drawable row: give them a key well above the largest (so that no truncated
        # key ties them with it) rather than +inf, which costs smallest_keys a pass.
        zero = w == 0
        np.copyto(keys, 0.0, where=zero)
        high = float(keys.max())
        np.copyto(keys, high + max(abs(high), 1.0), where=zero)
    return prep.to_rows(smallest_keys(keys, k))


def shuffled(values: np.ndarray, rng: Generator) -> np.ndarray:
    """Return ``values`` in uniformly random order (a new array)."""
    return rng.permutation(values)


# ---------------------------------------------------------------------------- epochs


@dataclass(frozen=True)
class Plan:
    """What one revision's weights and the sampler options make an epoch of.

    Attributes
    ----------
    prep : Prepared
        The drawable rows.
    num_samples : int
        Indices per epoch, over all ranks.
    options : SamplerOptions
        The options the plan follows.
    counts : numpy.ndarray of int64 or None
        With ``repeat_by_weight``: repeat count of each row of ``prep.row_ids()``.
    """

    prep: Prepared
    num_samples: int
    options: SamplerOptions
    counts: np.ndarray | None = None


def make_plan(
    weights: np.ndarray, options: SamplerOptions, *, n_labelled: int | None = None
) -> Plan:
    """Prepare draws from valid effective ``weights`` under ``options``.

    Raises
    ------
    ValueError
        All weights 0; ``num_samples`` above the non-zero rows without
        replacement; non-integer weights with ``repeat_by_weight``.
    """
    o = options
    if not o.weighted:
        weights = (weights > 0).astype(np.float64)
    counts = check_weight_counts(weights) if o.repeat_by_weight else None  # names the row
    drawn = o.replacement and counts is None and (o.shuffle or o.weighted)
    prep = prepare(weights, copy=not drawn, index=drawn, n_labelled=n_labelled)
    if counts is not None:
        if prep.n_nonzero < prep.n_rows:
            counts = counts[prep.row_ids()]  # aligned with row_ids(), as epochs use it
        return Plan(prep=prep, num_samples=int(counts.sum()), options=o, counts=counts)
    k = resolve_num_samples(
        prep, o.num_samples, replacement=o.replacement, exclude_zero_weights=o.exclude_zero_weights
    )
    return Plan(prep=prep, num_samples=k, options=o)


def plan_for(source: WeightSource, options: SamplerOptions) -> Plan:
    """Return :func:`make_plan` of ``source``'s effective weights (unlabelled rows weigh 0)."""
    weights = effective_weights(source)
    codes = np.asarray(source.label_codes)
    n_labelled = codes.size
    if codes.size and codes.min() < 0:
        n_labelled -= int(np.count_nonzero(codes < 0))
    return make_plan(weights, options, n_labelled=n_labelled)


def resolve_num_samples(
    prep: Prepared,
    num_samples: int | None,
    *,
    replacement: bool,
    exclude_zero_weights: bool,
) -> int:
    """Return the number of draws per epoch, validated against the weights.

    Parameters
    ----------
    prep : Prepared
        From :func:`prepare`.
    num_samples : int or None
        Requested draws (already checked positive); None means one per non-zero
        row (or one per labelled row when ``exclude_zero_weights`` is False).
    replacement : bool
        Whether rows may repeat.
    exclude_zero_weights : bool
        Whether the default counts only non-zero rows.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``num_samples`` exceeds the non-zero rows without replacement.
    """
    if num_samples is None:
        k = prep.n_nonzero if exclude_zero_weights else prep.n_labelled
    else:
        k = int(num_samples)
    if not replacement and k > prep.n_nonzero:
        zeros = prep.n_rows - prep.n_nonzero
        raise ValueError(
            f"num_samples={k} exceeds the {prep.n_nonzero} rows with a non-zero weight "
            f"({zeros} rows have weight 0 or no label and are never drawn); without "
            "replacement each row is drawn at most once per epoch: pass num_samples <= "
            f"{prep.n_nonzero}, exclude_zero_weights=True, or replacement=True"
        )
    return k


def epoch_chunks(
    plan: Plan, total: int, rng: Generator, *, multiple_of: int = 1
) -> Iterator[np.ndarray]:
    """Yield :func:`epoch_sequence` ``(plan, total, rng)`` in consecutive pieces.

    Draws with replacement are made lazily, piece by piece, so an epoch of 1e8
    never exists as one array. Each piece but the last has a length that is a
    multiple of ``multiple_of`` (the number of ranks, so ``piece[rank::ranks]``
    is this rank's share of it). A piece may be a reused buffer: copy it to keep it.
    """
    step = max(1, _CHUNK // multiple_of) * multiple_of
    if _draws_lazily(plan):
        for _, piece in _draws(plan.prep, total, rng, step):
            yield piece
        return
    seq = epoch_sequence(plan, total, rng)
    for start in range(0, total, step):
        yield seq[start : start + step]


def _draws_lazily(plan: Plan) -> bool:
    o = plan.options
    return plan.counts is None and o.replacement and o.shuffle


def epoch_sequence(plan: Plan, total: int, rng: Generator) -> np.ndarray:
    """Return the first ``total`` indices of an epoch (``total >= plan.num_samples``).

    Positions past ``num_samples`` are the padding of a distributed epoch:
    further draws with replacement, otherwise the sequence's first indices again.
    """
    o, prep = plan.options, plan.prep
    if plan.counts is not None:
        seq = np.repeat(prep.row_ids(), plan.counts)
        if o.shuffle:
            seq = shuffled(seq, rng)
    elif not o.weighted and not o.shuffle:
        return np.resize(prep.row_ids(), total)  # no draw: included rows in order, cycling
    elif o.replacement:
        seq = draw_with_replacement(prep, total, rng)
    else:
        seq = draw_without_replacement(prep, min(total, prep.n_nonzero), rng)
    if not o.shuffle and plan.counts is None and o.weighted:
        seq.sort()
    return seq if seq.size == total else np.resize(seq, total)


def sample_weight(table: WeightSource | Any, *, normalize: bool = False) -> np.ndarray:
    """Return the table's current weights as a loss-weight array in dataset order.

    This is the other way to use weights: pass it as Keras
    ``model.fit(x, y, sample_weight=...)``, or multiply ``reduction='none'``
    losses by it. Rows with weight 0 then contribute nothing to the loss (but,
    with Keras' default ``sum_over_batch_size`` reduction, still count in each
    batch's divisor; drop them from ``x`` and ``y`` to change that). Unlabelled
    rows (``label_codes < 0``) get weight 0 whatever their stored weight.

    Parameters
    ----------
    table : WeightSource or array-like of shape (n_samples,)
        The table whose current revision to read (or a weight vector).
    normalize : bool, default=False
        If True, divide by the mean of the non-zero weights, so the weights of
        the included rows average 1 and the loss keeps its scale.

    Returns
    -------
    numpy.ndarray of shape (n_samples,), float64
        A new, writable array.

    Raises
    ------
    ValueError
        If the weights sum to infinity, or ``normalize`` is True and every
        weight is 0.

    Examples
    --------
    >>> model.fit(x, y, sample_weight=table.sample_weight(normalize=True))  # doctest: +SKIP
    """
    w = np.array(effective_weights(as_source(table)), dtype=np.float64, copy=True)
    if normalize:
        included = w > 0
        if not included.any():
            raise ValueError(
                "cannot normalize: all weights are 0; include some rows (set a weight > 0) first"
            )
        w /= w[included].mean()
    return w
