"""Exact weighted draws over a weight vector, in vectorised numpy (no torch, no tensorflow).

The torch samplers (:mod:`weightwidget.samplers`) and the ``tf.data`` export
(:mod:`weightwidget.tf`) share these draws, so one seed gives one sequence of
indices whichever framework consumes it.

With replacement: inverse CDF through a guide table
---------------------------------------------------
Row ``i`` is drawn when ``cdf[i-1] <= u < cdf[i]`` for ``u`` uniform in ``[0,
sum(w))``, with ``cdf = cumsum(w)`` over all rows (a row of weight 0 adds an
empty interval, so it is never drawn and no row ids need remapping). A guide
table cuts ``[0, sum(w))`` into ``n`` buckets of equal probability and stores
the first row each can reach, so a draw needs two gathers and, on average over
draws, less than one forward step, whatever the skew. The result is exactly
``np.searchsorted(cdf, u, side="right")`` (a test checks it; draws within a few
ulps of a bucket edge start one bucket early so rounding can never skip the
answer), without that call's cache misses, which make it about 30x slower at
1e7 rows when the uniforms are not sorted. Unsorted uniforms give draws in
random order, so no shuffle is needed. Building the table costs two passes;
Walker's alias method draws with one random access fewer, but its vectorised
construction costs several times more, so for one epoch it is slower (the
benchmark measures both). "Exact" means exact up to the float64 rounding of
``cumsum``: each row's probability is off by at most a few ulps of the total
(float32 would be visibly wrong near 2**24 rows). There is no cap on the
number of rows (torch raises "number of categories cannot exceed 2^24").

Without replacement: Efraimidis-Spirakis keys
---------------------------------------------
Row ``i`` gets the key ``E_i / w_i`` with ``E_i`` standard exponential; the
``k`` smallest keys, in increasing order, are distributed exactly as ``k``
successive draws without replacement, each proportional to the remaining
weights. For weights beyond 1e±290 we rank ``log(E_i) - log(w_i)`` instead: the
same order, without overflow.

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

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

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

# Draws still walking forward after this many vectorised steps (those that landed
# in a bucket holding many tiny weights) finish with one binary search each.
_MAX_STEPS = 6
# Draws are made this many at a time, so scratch arrays stay small and reused.
_CHUNK = 1 << 16
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
        Row ids with a non-zero weight, increasing; None when no weight is 0
        (then position ``j`` is row ``j``) or when indexed.
    weights : numpy.ndarray of float64
        The non-zero weights, aligned with ``rows`` (empty if indexed).
    cdf : numpy.ndarray of float64
        ``cumsum`` of all ``n_rows`` weights; ``cdf[-1]`` is the total weight
        (empty if not indexed).
    guide : numpy.ndarray of int32 (intp beyond 2**31 rows)
        ``guide[j]`` is the number of rows whose ``cdf`` lies below bucket ``j``
        (empty if not indexed).
    """

    n_rows: int
    n_labelled: int
    rows: np.ndarray | None
    weights: np.ndarray
    cdf: np.ndarray
    guide: np.ndarray
    n_nonzero: int

    @property
    def weights_span_safe(self) -> bool:
        """Whether ``E / w`` stays a normal float for every weight (E <= 1e3)."""
        return bool(self.weights.min() > 1e-290 and self.weights.max() < 1e290)

    def row_ids(self) -> np.ndarray:
        """Row ids with a non-zero weight, increasing (of a ``prepare(index=False)``)."""
        if self.cdf.size:
            raise ValueError("row_ids() needs prepare(weights, index=False)")
        return np.arange(self.n_rows) if self.rows is None else self.rows

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
        Keep a private copy of the non-zero weights (needed by draws without
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
    elif n_nonzero == w.size:
        rows, wz = None, (w.copy() if copy else w)
    else:
        rows = np.flatnonzero(w)
        wz = w[rows]
    n_lab = int(w.size) if n_labelled is None else int(n_labelled)
    cdf, guide = _guide_table(w) if index else (np.empty(0), np.empty(0, dtype=np.intp))
    return Prepared(
        n_rows=int(w.size),
        n_labelled=n_lab,
        rows=rows,
        weights=wz,
        cdf=cdf,
        guide=guide,
        n_nonzero=n_nonzero,
    )


def _guide_table(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``cdf = cumsum(w)`` and its guide table (see :class:`Prepared`).

    ``guide[j]`` is the first row whose bucket ``trunc(cdf * n / total)`` is at
    least ``j``: row ``i`` starts the buckets after its predecessor's, up to its
    own. Buckets never decrease along the rows, so chunks of rows fill the guide
    in order with small temporaries: besides ``cdf``, no n-long array is made.
    """
    cdf = np.cumsum(w)
    m = w.size
    scale = m / cdf[-1]
    guide = np.empty(m, dtype=np.int32 if m < 2**31 else np.intp)
    prev = -1  # bucket of the row before the chunk
    for start in range(0, m, _CHUNK):
        # trunc == floor here; monotone because fl(x * c) is monotone in x
        bucket = np.multiply(cdf[start : start + _CHUNK], scale).astype(np.intp)
        np.minimum(bucket, m - 1, out=bucket)  # the guide has m entries
        span = np.diff(bucket, prepend=prev)
        top = int(bucket[-1])
        guide[prev + 1 : top + 1] = np.repeat(np.arange(start, start + bucket.size), span)
        prev = top
    return cdf, guide


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
    """Yield ``(start, draws)`` for ``k`` draws, ``chunk`` at a time (one reused buffer)."""
    if prep.cdf.size == 0:
        raise ValueError("draws with replacement need prepare(weights, index=True)")
    chunk = max(1, min(k, chunk))
    u, tmp = np.empty(chunk), np.empty(chunk)
    pos = np.empty(chunk, dtype=np.intp)
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        _draw_chunk(prep, rng, u[:size], tmp[:size], pos[:size])
        yield start, pos[:size]


def _draw_chunk(
    prep: Prepared, rng: Generator, u: np.ndarray, tmp: np.ndarray, pos: np.ndarray
) -> None:
    """Fill ``pos`` with draws; ``u`` and ``tmp`` are scratch buffers of the same length."""
    cdf, guide = prep.cdf, prep.guide
    m = cdf.size
    total = cdf[-1]
    rng.random(u.size, out=u)
    um = np.multiply(u, m, out=tmp)
    np.copyto(pos, um, casting="unsafe")  # trunc == floor: the bucket of each draw
    # Rounding in u * m or in the buckets of cdf could put a draw that lies within a
    # few ulps of a bucket boundary one bucket too far; start those one bucket early.
    um -= pos
    near = np.flatnonzero(um < 64 * np.finfo(np.float64).eps * (m + 1))
    pos[near] -= 1
    np.maximum(pos, 0, out=pos)
    pos[:] = np.take(guide, pos, mode="clip")
    us = u
    us *= total
    # fl(u * total) may round up to total; clamp so the answer stays in range.
    np.minimum(us, np.nextafter(total, 0.0), out=us)
    # Walk forward while cdf[pos] <= u: the answer is the first cdf strictly above u.
    act = np.flatnonzero(np.take(cdf, pos, out=tmp) <= us)
    ap, au = pos[act], us[act]
    steps = 0
    while act.size and steps < _MAX_STEPS:
        ap += 1
        pos[act] = ap
        keep = np.take(cdf, ap) <= au
        act, ap, au = act[keep], ap[keep], au[keep]
        steps += 1
    if act.size:
        pos[act] = np.searchsorted(cdf, au, side="right")


def _sortable(keys: np.ndarray) -> np.ndarray:
    """Map float64 keys to uint64 values in the same order (a new array; -0.0 equals 0.0)."""
    bits = np.add(keys, 0.0).view(np.uint64)  # the copy turns -0.0 into 0.0
    if keys.size and keys.min() >= 0:
        return bits  # non-negative floats already sort as their bit patterns
    flip = (bits.view(np.int64) >> 63).view(np.uint64)  # all ones where negative
    flip |= _SIGN
    bits ^= flip
    return bits


def smallest_keys(keys: np.ndarray, k: int) -> np.ndarray:
    """Return the positions of the ``k`` smallest ``keys``, in increasing key order.

    Exactly ``np.argsort(keys, kind="stable")[:k]`` (a test checks it), several
    times faster: see the module notes.

    Parameters
    ----------
    keys : numpy.ndarray of shape (m,), float64
        Keys without NaN.
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
    packed = _sortable(keys)
    packed -= packed.min()
    drop = max(0, int(packed.max()).bit_length() - (64 - b))  # key bits that do not fit
    if drop:
        packed >>= np.uint64(drop)
    packed <<= np.uint64(b)
    for start in range(0, m, _CHUNK):  # add positions without a fresh m-long arange
        part = packed[start : start + _CHUNK]
        part |= np.arange(start, start + part.size, dtype=np.uint64)
    if k < m:
        packed.partition(k - 1)
        # keys left out may tie the k-th once truncated: keep them for the exact order
        bound = ((int(packed[k - 1]) >> b) + 1) << b
        rest = packed[k:]
        extra = rest[rest < bound] if bound < 2**64 else rest
        packed = np.concatenate([packed[:k], extra])
    packed.sort()  # SIMD sort of uint64 values: several times faster than argsort
    tied = _truncation_ties(packed, b) if drop else None
    packed &= np.uint64((1 << b) - 1)
    pos = packed.view(np.int64)
    if tied is not None:
        _untie(pos, tied, keys)
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
    keys = rng.standard_exponential(prep.n_nonzero)
    if prep.weights_span_safe:
        keys /= prep.weights
    else:  # same order as E / w, without overflow or underflow for extreme weights
        np.log(keys, out=keys)
        keys -= np.log(prep.weights)
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
        if prep.rows is not None:
            counts = counts[prep.rows]
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
