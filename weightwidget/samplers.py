"""PyTorch exports: exact weighted samplers (also under DDP), a weighted Dataset, weighted losses.

Import this module only when torch is wanted (``WeightTable.create_sampler``
does it for you); ``import weightwidget`` never imports torch.

Epochs
------
A sampler draws afresh every epoch from a generator seeded with ``(seed,
epoch)``, so the same seed and epoch always give the same indices, on every
rank. ``set_epoch(e)`` chooses the epoch of the next iteration, as with
``torch.utils.data.DistributedSampler``; unlike it, every iteration then
advances the epoch by one, so plain ``for epoch in ...: for batch in loader``
gets a fresh draw each epoch without calling ``set_epoch``. Calling
``set_epoch(epoch)`` at the top of each epoch (the DDP idiom) gives the same
result, and ranks stay in step either way because they iterate equally often.
"""

from __future__ import annotations

import logging
import math
import numbers
import operator
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sampling
from ._sampling import sample_weight

try:
    import torch
    from torch.utils.data import Dataset, Sampler
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        'weightwidget.samplers needs PyTorch. Install it with `pip install "weightwidget[torch]"`.'
    ) from exc

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = [
    "WeightedDataset",
    "WeightedTableSampler",
    "create_sampler",
    "sample_weight",
    "weighted_mean_loss",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

# Live DDP samplers wait this long for all ranks to see the same table revision.
_REVISION_SYNC_TIMEOUT = 30.0


class _ArraySource:
    """A fixed weight vector standing in for a table (benchmarks, plain arrays)."""

    def __init__(self, weights: Any) -> None:
        self.weights = _sampling.check_weights(weights)
        self.revision = 0

    def latest(self) -> _ArraySource:
        return self


def _source(table: Any) -> Any:
    if hasattr(table, "weights") and hasattr(table, "revision"):
        return table
    if isinstance(table, str):
        raise TypeError(
            f"table must be a WeightTable or an array of weights; got the string {table!r} "
            "(open it first with WeightTable.open(path))"
        )
    return _ArraySource(table)


def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {name}={value!r}")
    return int(value)


class WeightedTableSampler(Sampler[int]):
    """Draw dataset indices with probability proportional to a table's weights.

    Build it with :func:`create_sampler` (or ``table.create_sampler(...)``) and
    pass it as ``DataLoader(dataset, sampler=...)``. Draws are exact (inverse
    CDF over the non-zero weights, no 2**24 cap), rows with weight 0 are never
    drawn, and each epoch is a fresh, reproducible draw (see the module notes).

    Parameters
    ----------
    table : WeightTable or array-like of shape (n_samples,)
        Where the weights come from. An array is a fixed weight vector (no ``live``).
    num_samples : int, default=None
        Draws per epoch over all ranks. None means one per row with a non-zero
        weight, or one per row when ``exclude_zero_weights`` is False.
    replacement : bool, default=True
        If False, each row appears at most once per epoch (weighted sampling
        without replacement, Efraimidis–Spirakis keys, in draw order).
    exclude_zero_weights : bool, default=True
        Only affects the default ``num_samples``; rows with weight 0 are never drawn.
    seed : int, default=None
        Seed of the per-epoch generator. None picks one at random (see ``seed``),
        except with ``distributed=True`` where it is 0, as in
        ``DistributedSampler``, so that all ranks agree without communicating.
    live : bool, default=False
        If True, call ``table.latest()`` at the start of every epoch and draw from
        that revision, so edits made in the widget (or by another process)
        between epochs apply to the next epoch without rebuilding the DataLoader.
    distributed : bool, default=False
        If True, all ranks draw the same global sample of
        ``ceil(num_samples / num_replicas) * num_replicas`` indices and rank ``r``
        keeps positions ``r, r + num_replicas, ...``: disjoint, equal shares whose
        union follows the weights. Without replacement, when there are fewer
        non-zero rows than that, the global draw is padded by repeating its first
        indices, as ``DistributedSampler`` does.
    num_replicas : int, default=None
        Number of ranks; defaults to ``torch.distributed.get_world_size()``.
    rank : int, default=None
        This rank, in ``[0, num_replicas)``; defaults to ``torch.distributed.get_rank()``.

    Attributes
    ----------
    seed : int
        The seed actually used (drawn at random when ``seed=None``).
    epoch : int
        The epoch the next iteration draws.
    num_samples : int
        Global draws per epoch (after a live refresh, for the current revision).
    revision : int
        Table revision the current draw uses.

    Raises
    ------
    ValueError
        If all weights are 0, ``num_samples`` is not positive or (without
        replacement) exceeds the non-zero rows, or ``rank`` is out of range.
    """

    def __init__(
        self,
        table: WeightTable | Any,
        num_samples: int | None = None,
        *,
        replacement: bool = True,
        exclude_zero_weights: bool = True,
        seed: int | None = None,
        live: bool = False,
        distributed: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        super().__init__()
        self._source = _source(table)
        if live and isinstance(self._source, _ArraySource):
            raise ValueError(
                "live=True needs a WeightTable to re-read each epoch; got a plain array"
            )
        self.replacement = bool(replacement)
        self.exclude_zero_weights = bool(exclude_zero_weights)
        self.live = bool(live)
        self.distributed = bool(distributed)
        if num_samples is not None:
            _sampling.check_positive_int("num_samples", num_samples)
        self._requested = num_samples
        if self.distributed:
            self.num_replicas, self.rank = _resolve_replicas(num_replicas, rank)
            self.seed = _sampling.check_seed(0 if seed is None else seed)
        else:
            if num_replicas is not None or rank is not None:
                raise ValueError(
                    f"num_replicas={num_replicas!r} and rank={rank!r} only apply with "
                    "distributed=True; pass distributed=True or leave them None"
                )
            self.num_replicas, self.rank = 1, 0
            self.seed = _sampling.check_seed(seed)
        self.epoch = 0
        self._current: Iterator[int] | None = None
        self._snapshot(self._source)

    # -- state -------------------------------------------------------------------------

    def _snapshot(self, source: Any) -> None:
        """Prepare draws from ``source``'s current weights (validates them)."""
        prep = _sampling.prepare(source.weights, copy=not self.replacement, index=self.replacement)
        k = _sampling.resolve_num_samples(
            prep,
            self._requested,
            replacement=self.replacement,
            exclude_zero_weights=self.exclude_zero_weights,
        )
        self._prep, self.num_samples, self.revision = prep, k, int(source.revision)

    def _refresh(self, *, sync: bool = True) -> None:
        """In live mode, move to the table's latest revision.

        With ``sync`` (at the start of an epoch) distributed ranks first agree on the
        revision; ``__len__`` passes False because a collective there would hang when
        only some ranks ask for the length.
        """
        if not self.live:
            return
        table = self._source.latest()
        if self.distributed and sync:
            _sync_revision(table)
        if int(table.revision) != self.revision:
            logger.info("live sampler: revision %s -> %s", self.revision, table.revision)
            self._snapshot(table)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next iteration (then each iteration advances it by one).

        Parameters
        ----------
        epoch : int
            Epoch number, >= 0. Same seed and epoch give the same indices.
        """
        epoch = _check_int("epoch", epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0; got epoch={epoch}")
        self.epoch = epoch

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """Return this rank's indices for ``epoch`` as an int64 array (no epoch advance).

        Parameters
        ----------
        epoch : int, default=None
            Epoch to draw; None means ``self.epoch``. Uses the current snapshot of
            the weights (no live refresh).

        Returns
        -------
        numpy.ndarray of shape (len(self),), int64
        """
        epoch = self.epoch if epoch is None else _check_int("epoch", epoch)
        rng = _sampling.epoch_rng(self.seed, epoch)
        if self.distributed:
            return _sampling.distributed_indices(
                self._prep,
                self.num_samples,
                rng,
                replacement=self.replacement,
                num_replicas=self.num_replicas,
                rank=self.rank,
            )
        return _sampling.draw(self._prep, self.num_samples, rng, replacement=self.replacement)

    # -- Sampler protocol ----------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:
        self._refresh()
        idx = self.indices(self.epoch)
        self.epoch += 1
        # A plain list iterator: several times faster to consume than a generator,
        # and its length hint tells __len__ whether an epoch is still in progress.
        self._current = iter(idx.tolist())
        return self._current

    def _in_epoch(self) -> bool:
        return self._current is not None and operator.length_hint(self._current) > 0

    def __len__(self) -> int:
        # A live sampler reports the length of the epoch in progress, or else of the
        # next one (the table's latest revision), so len(loader) matches what it yields.
        if self.live and not self._in_epoch():
            self._refresh(sync=False)
        if self.distributed:
            return math.ceil(self.num_samples / self.num_replicas)
        return self.num_samples

    def __repr__(self) -> str:
        parts = [
            f"num_samples={self.num_samples}",
            f"replacement={self.replacement}",
            f"seed={self.seed}",
            f"epoch={self.epoch}",
        ]
        if self.live:
            parts.append("live=True")
        if self.distributed:
            parts.append(f"num_replicas={self.num_replicas}, rank={self.rank}")
        return f"WeightedTableSampler({', '.join(parts)})"


def _resolve_replicas(num_replicas: Any, rank: Any) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError(
                "distributed=True needs torch.distributed to be initialised "
                "(call torch.distributed.init_process_group first) or explicit "
                "num_replicas= and rank="
            )
        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
    num_replicas = _check_int("num_replicas", num_replicas)
    rank = _check_int("rank", rank)
    if num_replicas < 1:
        raise ValueError(f"num_replicas must be >= 1; got num_replicas={num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ValueError(
            f"rank={rank} is out of range for num_replicas={num_replicas}; "
            f"rank must be in [0, {num_replicas - 1}]"
        )
    return num_replicas, rank


def _sync_revision(table: Any) -> None:
    """Make every rank reach the same table revision before a live distributed draw.

    A revision committed while ranks refresh would otherwise split one epoch over two
    weight vectors. Ranks behind the newest revision call ``latest()`` again until all
    agree. A no-op when torch.distributed is not initialised.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    deadline = time.monotonic() + _REVISION_SYNC_TIMEOUT
    while True:
        rev = torch.tensor([int(table.revision), -int(table.revision)], dtype=torch.int64)
        dist.all_reduce(rev, op=dist.ReduceOp.MAX)
        newest, oldest = int(rev[0]), -int(rev[1])
        if newest == oldest:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"ranks disagree on the table revision ({oldest} vs {newest}) after "
                f"{_REVISION_SYNC_TIMEOUT:.0f} s; is every rank reading the same store?"
            )
        time.sleep(0.05)
        table.latest()


def create_sampler(
    table: WeightTable | Any,
    num_samples: int | None = None,
    *,
    replacement: bool = True,
    exclude_zero_weights: bool = True,
    seed: int | None = None,
    live: bool = False,
    distributed: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> WeightedTableSampler:
    """Return a sampler drawing dataset indices in proportion to the table's weights.

    Parameters
    ----------
    table : WeightTable or array-like of shape (n_samples,)
        The table (or a fixed weight vector).
    num_samples : int, default=None
        Global draws per epoch; None means the number of non-zero rows (all rows
        when ``exclude_zero_weights=False``). With ``distributed=True`` each rank
        yields ``ceil(num_samples / num_replicas)`` of one shared draw.
    replacement : bool, default=True
        False draws each row at most once per epoch.
    exclude_zero_weights : bool, default=True
        Whether the default ``num_samples`` counts only non-zero rows. Rows with
        weight 0 are never drawn either way.
    seed : int, default=None
        Seed for the ``(seed, epoch)`` generator; None is random (0 when distributed).
    live : bool, default=False
        Re-read the table's latest revision at the start of each epoch.
    distributed : bool, default=False
        Split one global draw into disjoint, equal shares, one per rank.
    num_replicas : int, default=None
        Number of ranks (default: from ``torch.distributed``).
    rank : int, default=None
        This rank (default: from ``torch.distributed``).

    Returns
    -------
    WeightedTableSampler
        A ``torch.utils.data.Sampler[int]`` with ``set_epoch``, ``seed`` and ``epoch``.

    Raises
    ------
    ValueError
        All weights 0; ``num_samples`` not positive, or above the non-zero rows
        without replacement; ``rank`` out of range; ``distributed=True`` without
        an initialised process group or explicit ``num_replicas``/``rank``.

    Examples
    --------
    >>> sampler = table.create_sampler(seed=0)  # doctest: +SKIP
    >>> loader = DataLoader(dataset, batch_size=64, sampler=sampler)  # doctest: +SKIP
    """
    return WeightedTableSampler(
        table,
        num_samples,
        replacement=replacement,
        exclude_zero_weights=exclude_zero_weights,
        seed=seed,
        live=live,
        distributed=distributed,
        num_replicas=num_replicas,
        rank=rank,
    )


class WeightedDataset(Dataset):
    """Wrap a map-style dataset so each item also carries its row's weight.

    ``dataset[i]`` returning ``(x, y)`` becomes ``(x, y, w)`` (any tuple gets
    ``w`` appended; any other item ``item`` becomes ``(item, w)``), with ``w`` a
    float32 scalar tensor, so the default collate gives a ``(batch,)`` weight
    tensor to combine with ``reduction='none'`` losses via
    :func:`weighted_mean_loss`.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset in the table's row order.
    table : WeightTable or array-like of shape (n_samples,)
        Source of the weights; read once here and again on :meth:`refresh`.

    Raises
    ------
    ValueError
        If the dataset and the table differ in length.
    """

    def __init__(self, dataset: Any, table: WeightTable | Any) -> None:
        self.dataset = dataset
        self._source = _source(table)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the table's current weights (call between epochs after edits)."""
        w = np.asarray(self._source.weights, dtype=np.float32)
        n = len(self.dataset)
        if w.shape != (n,):
            raise ValueError(
                f"the dataset has {n} items but the table has {w.size} weights; "
                "wrap the dataset the table was built from"
            )
        self._weights = torch.from_numpy(w.copy())

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        item = self.dataset[index]
        w = self._weights[index]
        if isinstance(item, tuple):
            return (*item, w)
        return (item, w)


def weighted_mean_loss(losses: Any, weights: Any, *, denominator: str = "weight_sum") -> Any:
    """Reduce per-sample losses (``reduction='none'``) to their weighted mean.

    Parameters
    ----------
    losses : torch.Tensor or array-like of shape (batch,)
        Per-sample losses.
    weights : torch.Tensor or array-like of shape (batch,)
        Per-sample weights (for example the ``w`` of :class:`WeightedDataset`).
    denominator : {"weight_sum", "count"}, default="weight_sum"
        ``"weight_sum"`` gives ``sum(w * loss) / sum(w)`` (0 when every weight is
        0, so such a batch adds no gradient); ``"count"`` gives
        ``sum(w * loss) / batch``, Keras' ``sum_over_batch_size``.

    Returns
    -------
    torch.Tensor or numpy.float64
        A scalar, differentiable when ``losses`` is a tensor that requires grad.

    Raises
    ------
    ValueError
        If the shapes differ or ``denominator`` is unknown.

    Examples
    --------
    >>> loss = weighted_mean_loss(F.cross_entropy(out, y, reduction="none"), w)  # doctest: +SKIP
    """
    if denominator not in ("weight_sum", "count"):
        raise ValueError(
            f"denominator must be 'weight_sum' or 'count'; got denominator={denominator!r}"
        )
    if isinstance(losses, torch.Tensor):
        w = torch.as_tensor(weights, device=losses.device).to(losses.dtype)
        if w.shape != losses.shape:
            raise ValueError(
                f"losses and weights must have the same shape; got {tuple(losses.shape)} "
                f"and {tuple(w.shape)} (use reduction='none' for per-sample losses)"
            )
        total = (losses * w).sum()
        if denominator == "count":
            return total / max(losses.numel(), 1)
        wsum = w.sum()
        return torch.where(wsum > 0, total / wsum.clamp_min(torch.finfo(w.dtype).tiny), total * 0)
    arr = np.asarray(losses, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != arr.shape:
        raise ValueError(
            f"losses and weights must have the same shape; got {arr.shape} and {w.shape}"
        )
    total = float(np.sum(arr * w))
    if denominator == "count":
        return np.float64(total / max(arr.size, 1))
    wsum = float(w.sum())
    return np.float64(total / wsum if wsum > 0 else 0.0)
