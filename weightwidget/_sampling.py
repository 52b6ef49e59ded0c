"""Exact weighted draws over a weight vector, in vectorised numpy (no torch, no tensorflow).

The torch samplers (:mod:`weightwidget.samplers`) and the ``tf.data`` export
(:mod:`weightwidget.tf`) share these draws, so one seed gives one sequence of
indices whichever framework consumes it.

With replacement we invert the cumulative distribution of the non-zero weights
(``cdf[i-1] <= u < cdf[i]`` selects row ``i``) through a guide table: the unit
interval is cut into ``m`` buckets of equal probability and each bucket stores
the first row it can reach, so a draw needs two gathers and, on average over
draws, less than one forward step, whatever the skew (every bucket holds the
same probability). The result is exactly ``np.searchsorted(cdf, u,
side="right")`` (a test checks it; draws within a few ulps of a bucket edge
start one bucket early so rounding can never skip the answer), but without
that call's cache misses, which make it about 30x slower at 1e7 rows when the
uniforms are not sorted. Unsorted uniforms give draws in random order, so no
shuffle is needed. Unlike ``torch.multinomial`` there is no cap on the number
of categories (torch raises "number of categories cannot exceed 2^24").
"Exact" means exact up to the float64 rounding of ``cumsum``: each row's
probability is off by at most a few ulps of the total.

Without replacement we use Efraimidis–Spirakis keys: row ``i`` gets
``E_i / w_i`` with ``E_i`` standard exponential (equivalently ``log(u_i) / w_i``
ranked the other way); the ``k`` smallest keys, in increasing order, are
distributed exactly as ``k`` successive draws without replacement, each
proportional to the remaining weights. For weights beyond 1e±290 we rank
``log(E_i) - log(w_i)`` instead: the same order, without overflow.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import check_weight_values

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = [
    "Prepared",
    "draw",
    "draw_with_replacement",
    "draw_without_replacement",
    "epoch_rng",
    "prepare",
    "resolve_num_samples",
    "sample_weight",
]

# Draws still walking forward after this many vectorised steps (those that landed
# in a bucket holding many tiny weights) finish with one binary search each.
_MAX_STEPS = 6
# Draws are made this many at a time, so scratch arrays stay small (2 MiB) and reused.
_CHUNK = 1 << 18


def check_weights(weights: Any) -> np.ndarray:
    """Return ``weights`` as a 1-D float64 array, or raise if any is not finite and >= 0.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Per-row weights.

    Returns
    -------
    numpy.ndarray of shape (n_samples,)
        The weights as float64 (not copied when already float64).

    Raises
    ------
    ValueError
        If the array is not 1-D, or a weight is NaN, infinite or negative.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D; got an array of shape {w.shape}")
    return check_weight_values(w, index_name="row")


@dataclass(frozen=True)
class Prepared:
    """The non-zero rows of a weight vector, ready for repeated draws.

    Attributes
    ----------
    n_rows : int
        Length of the weight vector, zeros included.
    rows : numpy.ndarray of int64 or None
        Row ids with a non-zero weight, increasing; None when no weight is 0
        (then position ``j`` is row ``j`` and we skip a gather per draw).
    weights : numpy.ndarray of float64
        The non-zero weights, aligned with ``rows``.
    cdf : numpy.ndarray of float64
        ``cumsum(weights)``; ``cdf[-1]`` is the total weight (empty if not indexed).
    guide : numpy.ndarray of intp
        ``guide[j]`` is the number of positions whose ``cdf`` lies below bucket ``j``
        (empty if not indexed).
    """

    n_rows: int
    rows: np.ndarray | None
    weights: np.ndarray
    cdf: np.ndarray
    guide: np.ndarray

    @property
    def weights_span_safe(self) -> bool:
        """Whether ``E / w`` stays a normal float for every weight (E <= 1e3)."""
        return bool(self.weights.min() > 1e-290 and self.weights.max() < 1e290)

    @property
    def n_nonzero(self) -> int:
        """Number of rows with a non-zero weight."""
        return int(self.weights.size)

    def to_rows(self, pos: np.ndarray) -> np.ndarray:
        """Map positions among the non-zero rows to row ids, in place."""
        if self.rows is not None:
            np.take(self.rows, pos, out=pos, mode="clip")
        return pos


def prepare(weights: Any, *, copy: bool = True, index: bool = True) -> Prepared:
    """Index the non-zero weights for exact draws.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Finite, non-negative weights; rows with weight 0 are never drawn.
    copy : bool, default=True
        Keep a private copy of the weights (needed by draws without replacement,
        so that a later in-place change of the caller's array cannot leak in).
        With False, ``Prepared.weights`` may be the caller's array.
    index : bool, default=True
        Build ``cdf`` and ``guide`` (needed for draws with replacement only).

    Returns
    -------
    Prepared

    Raises
    ------
    ValueError
        If a weight is invalid, or all weights are 0.
    """
    w = check_weights(weights)
    nonzero = w > 0
    n_nonzero = int(np.count_nonzero(nonzero))
    if n_nonzero == 0:
        raise ValueError(
            f"all {w.size} weights are 0, so there is nothing to draw; include some rows "
            "(set a weight > 0) before sampling"
        )
    if n_nonzero == w.size:
        rows, wz = None, (w.copy() if copy else w)
    else:
        rows = np.flatnonzero(nonzero).astype(np.int64, copy=False)
        wz = w[rows]
    del nonzero
    if not index:
        empty = np.empty(0)
        return Prepared(n_rows=int(w.size), rows=rows, weights=wz, cdf=empty, guide=empty)
    cdf = np.cumsum(wz)
    m = wz.size
    # Bucket of each cumulative weight (trunc == floor here); monotone because
    # fl(x * c) is monotone in x. Casting in the ufunc avoids a slow astype copy.
    guide = np.empty(m, dtype=np.intp)
    np.multiply(cdf, m / cdf[-1], out=guide, casting="unsafe")
    np.minimum(guide, m, out=guide)
    counts = np.bincount(guide, minlength=m + 1)
    guide[0] = 0
    np.cumsum(counts[: m - 1], out=guide[1:])
    return Prepared(n_rows=int(w.size), rows=rows, weights=wz, cdf=cdf, guide=guide)


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """Return the generator for ``(seed, epoch)``: same pair, same draws, on every rank."""
    return np.random.default_rng([int(seed), int(epoch)])


def draw_with_replacement(prep: Prepared, k: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``k`` row ids independently, each with probability ``w_i / sum(w)``.

    The result equals ``rows[np.searchsorted(cdf, rng.random(k) * cdf[-1], side="right")]``
    exactly (a test checks it); the work runs in chunks so the temporaries stay
    small and are reused, which avoids page-faulting fresh memory at 1e8 draws.

    Parameters
    ----------
    prep : Prepared
        From :func:`prepare`.
    k : int
        Number of draws.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray of shape (k,), int64
        Row ids in the original (zeros included) numbering, in draw order.
    """
    if prep.cdf.size == 0:
        raise ValueError("draws with replacement need prepare(weights, index=True)")
    out = np.empty(k, dtype=np.intp)
    chunk = min(k, _CHUNK)
    u = np.empty(chunk)
    tmp = np.empty(chunk)
    for start in range(0, k, chunk):
        size = min(chunk, k - start)
        _draw_chunk(prep, rng, u[:size], tmp[:size], out[start : start + size])
    return out


def _draw_chunk(
    prep: Prepared, rng: np.random.Generator, u: np.ndarray, tmp: np.ndarray, pos: np.ndarray
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
    np.take(guide, pos, out=pos, mode="clip")
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
    prep.to_rows(pos)


def draw_without_replacement(prep: Prepared, k: int, rng: np.random.Generator) -> np.ndarray:
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
    numpy.ndarray of shape (k,), int64
        Distinct row ids in draw order (increasing Efraimidis–Spirakis key).
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
    if k < prep.n_nonzero:
        top = np.argpartition(keys, k - 1)[:k]
        order = top[np.argsort(keys[top], kind="stable")]
    else:
        order = np.argsort(keys, kind="stable")
    return prep.to_rows(order.astype(np.intp, copy=False))


def draw(prep: Prepared, k: int, rng: np.random.Generator, *, replacement: bool) -> np.ndarray:
    """Dispatch to :func:`draw_with_replacement` or :func:`draw_without_replacement`."""
    if replacement:
        return draw_with_replacement(prep, k, rng)
    return draw_without_replacement(prep, k, rng)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} should be a positive integer, but got {name}={value!r}")
    if value <= 0:
        raise ValueError(f"{name} should be a positive integer, but got {name}={value}")
    return int(value)


def check_seed(seed: Any) -> int:
    """Return ``seed`` as a non-negative int, drawing a fresh one from the OS when None."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0; got seed={seed!r}")
    return int(seed)


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
        Requested draws; None means one per non-zero row (or one per row when
        ``exclude_zero_weights`` is False).
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
        If ``num_samples`` is not positive, or exceeds the non-zero rows without replacement.
    """
    if num_samples is None:
        k = prep.n_nonzero if exclude_zero_weights else prep.n_rows
    else:
        k = check_positive_int("num_samples", num_samples)
    if not replacement and k > prep.n_nonzero:
        zeros = prep.n_rows - prep.n_nonzero
        raise ValueError(
            f"num_samples={k} exceeds the {prep.n_nonzero} rows with a non-zero weight "
            f"({zeros} rows have weight 0 and are never drawn); without replacement each "
            f"row is drawn at most once per epoch: pass num_samples <= {prep.n_nonzero}, "
            "exclude_zero_weights=True, or replacement=True"
        )
    return k


def distributed_indices(
    prep: Prepared,
    num_samples: int,
    rng: np.random.Generator,
    *,
    replacement: bool,
    num_replicas: int,
    rank: int,
) -> np.ndarray:
    """Return this rank's share of one global draw.

    Every rank computes the same global draw of ``ceil(num_samples / num_replicas)
    * num_replicas`` indices (same seed and epoch) and keeps positions
    ``rank, rank + num_replicas, ...``, so shares are disjoint and equal in length.
    With replacement the padding positions are extra draws, so the union follows
    the weights exactly. Without replacement the global draw takes as many distinct
    rows as exist (up to the padded size) and, if that is short, repeats its first
    draws as padding, as ``torch.utils.data.DistributedSampler`` does.
    """
    per_rank = math.ceil(num_samples / num_replicas)
    total = per_rank * num_replicas
    if replacement:
        idx = draw_with_replacement(prep, total, rng)
    else:
        idx = draw_without_replacement(prep, min(total, prep.n_nonzero), rng)
        if idx.size < total:
            reps = math.ceil(total / idx.size)
            idx = np.tile(idx, reps)[:total]
    return idx[rank:total:num_replicas]


def sample_weight(table: WeightTable, *, normalize: bool = False) -> np.ndarray:
    """Return the table's current weights as a loss-weight array in dataset order.

    This is the other way to use weights: pass it as Keras
    ``model.fit(x, y, sample_weight=...)``, or multiply ``reduction='none'``
    losses by it. Rows with weight 0 then contribute nothing to the loss (but,
    with Keras' default ``sum_over_batch_size`` reduction, still count in each
    batch's divisor; drop them from ``x`` and ``y`` to change that).

    Parameters
    ----------
    table : WeightTable
        The table whose current revision to read.
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
        If ``normalize`` is True and every weight is 0.

    Examples
    --------
    >>> model.fit(x, y, sample_weight=table.sample_weight(normalize=True))  # doctest: +SKIP
    """
    w = np.array(table.weights, dtype=np.float64, copy=True)
    if normalize:
        included = w > 0
        if not included.any():
            raise ValueError(
                "cannot normalize: all weights are 0; include some rows (set a weight > 0) first"
            )
        w /= w[included].mean()
    return w
