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

What is drawn
-------------
Samplers read a :class:`~weightwidget.protocol.WeightSource` (a
``WeightTable``, or a plain array of weights) and draw from its effective
weights: unlabelled rows and rows with weight 0 are never drawn. The options
are those of :class:`~weightwidget.protocol.SamplerOptions`, declared once.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sampling
from ._sampling import sample_weight
from .protocol import (
    ArrayWeights,
    SamplerOptions,
    as_source,
    check_int,
    check_seed,
    effective_weights,
    takes_options,
)

try:
    import torch
    from torch.utils.data import Dataset, Sampler
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        'weightwidget.samplers needs PyTorch. Install it with `pip install "weightwidget[torch]"`.'
    ) from exc

if TYPE_CHECKING:
    from .protocol import WeightSource

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
_OPTION_NAMES = frozenset(SamplerOptions.__dataclass_fields__)


@takes_options(SamplerOptions)
class WeightedTableSampler(Sampler[int]):
    """Draw dataset indices with probability proportional to a table's weights.

    Build it with :func:`create_sampler` (or ``table.create_sampler(...)``) and
    pass it as ``DataLoader(dataset, sampler=...)``. Draws are exact (inverse
    CDF over the effective weights, no 2**24 cap), unlabelled rows and rows
    with weight 0 are never drawn, and each epoch is a fresh, reproducible draw
    (see the module notes).

    Parameters
    ----------
    table : WeightSource or array-like of shape (n_samples,)
        Where the weights come from: a ``WeightTable`` or any
        :class:`~weightwidget.protocol.WeightSource`. An array is a fixed weight
        vector (no ``live``).
    {options}

    Attributes
    ----------
    options : SamplerOptions
        The options as given (each is also an attribute, e.g. ``replacement``).
    seed : int
        The seed actually used (drawn at random when ``seed=None``).
    epoch : int
        The epoch the next iteration draws.
    num_samples : int
        Global indices per epoch (after a live refresh, for the current revision).
    num_replicas, rank : int
        The ranks sharing each epoch, and this one (1 and 0 unless distributed).
    revision : int
        Table revision the current draw uses.

    Raises
    ------
    ValueError
        If all effective weights are 0, ``num_samples`` is not positive or
        (without replacement) exceeds the non-zero rows, ``rank`` is out of
        range, or an option is invalid (see :class:`~weightwidget.protocol.SamplerOptions`).
    TypeError
        An unknown option, or one of the wrong type.
    """

    def __init__(
        self, table: WeightSource | Any, num_samples: int | None = None, **options: Any
    ) -> None:
        super().__init__()
        opts = SamplerOptions.from_call("create_sampler", num_samples, options)
        source = as_source(table)
        if opts.live and isinstance(source, ArrayWeights):
            raise ValueError(
                "live=True needs a WeightTable to re-read each epoch; got a plain array"
            )
        self.options = opts
        self._source = source
        if opts.distributed:
            self.num_replicas, self.rank = _resolve_replicas(opts.num_replicas, opts.rank)
            self.seed = check_seed(0 if opts.seed is None else opts.seed)
        else:
            self.num_replicas, self.rank = 1, 0
            self.seed = check_seed(opts.seed)
        self.epoch = 0
        self._in_epoch = False
        self._snapshot(source)

    def __getattr__(self, name: str) -> Any:
        # each option reads through to self.options (declared once, in SamplerOptions)
        options = self.__dict__.get("options")
        if options is not None and name in _OPTION_NAMES:
            return getattr(options, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- state -------------------------------------------------------------------------

    def _snapshot(self, source: WeightSource) -> None:
        """Plan draws from ``source``'s current weights (validates them)."""
        plan = _sampling.plan_for(source, self.options)
        self._plan, self.num_samples, self.revision = plan, plan.num_samples, int(source.revision)

    def _refresh(self, *, sync: bool = True) -> None:
        """In live mode, move to the table's latest revision.

        With ``sync`` (at the start of an epoch) distributed ranks first agree on the
        revision; ``__len__`` passes False because a collective there would hang when
        only some ranks ask for the length.
        """
        if not self.options.live:
            return
        table = self._source.latest()
        if self.options.distributed and sync:
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
        epoch = check_int("epoch", epoch)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0; got epoch={epoch}")
        self.epoch = epoch

    def _total(self) -> int:
        """Length of the global sequence all ranks share: padded to a multiple of ranks."""
        return math.ceil(self.num_samples / self.num_replicas) * self.num_replicas

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
            Exactly what iterating the sampler in that epoch yields.
        """
        epoch = self.epoch if epoch is None else check_int("epoch", epoch)
        rng = _sampling.epoch_rng(self.seed, epoch)
        total = self._total()
        seq = _sampling.epoch_sequence(self._plan, total, rng)
        return seq[self.rank : total : self.num_replicas]

    # -- Sampler protocol ----------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:
        self._refresh()
        rng = _sampling.epoch_rng(self.seed, self.epoch)
        self.epoch += 1
        self._in_epoch = True
        # Chained per-chunk lists: as fast to consume as one big list, without a
        # Python int per index in memory at once (3.6 GB at 1e8 draws).
        return itertools.chain.from_iterable(self._chunk_lists(self._plan, rng))

    def _chunk_lists(self, plan: _sampling.Plan, rng: np.random.Generator) -> Iterator[list]:
        step, start = self.num_replicas, self.rank
        for chunk in _sampling.epoch_chunks(plan, self._total(), rng, multiple_of=step):
            yield chunk[start::step].tolist()
        self._in_epoch = False

    def __len__(self) -> int:
        # A live sampler reports the length of the epoch in progress, or else of the
        # next one (the table's latest revision), so len(loader) matches what it yields.
        if self.options.live and not self._in_epoch:
            self._refresh(sync=False)
        return math.ceil(self.num_samples / self.num_replicas)

    def __repr__(self) -> str:
        defaults = SamplerOptions()
        changed = [
            f"{name}={getattr(self.options, name)!r}"
            for name in SamplerOptions.__dataclass_fields__
            if name not in ("num_samples", "seed", "num_replicas", "rank")
            and getattr(self.options, name) != getattr(defaults, name)
        ]
        parts = [f"num_samples={self.num_samples}", f"seed={self.seed}", f"epoch={self.epoch}"]
        parts += changed
        if self.options.distributed:
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
    num_replicas = check_int("num_replicas", num_replicas)
    rank = check_int("rank", rank)
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


@takes_options(SamplerOptions)
def create_sampler(  # noqa: D417 ({options} documents them)
    table: WeightSource | Any, num_samples: int | None = None, **options: Any
) -> WeightedTableSampler:
    """Return a sampler drawing dataset indices in proportion to the table's weights.

    Parameters
    ----------
    table : WeightSource or array-like of shape (n_samples,)
        The table (any :class:`~weightwidget.protocol.WeightSource`), or a fixed
        weight vector.
    {options}

    Returns
    -------
    WeightedTableSampler
        A ``torch.utils.data.Sampler[int]`` with ``set_epoch``, ``seed`` and ``epoch``.

    Raises
    ------
    ValueError
        All effective weights 0; ``num_samples`` not positive, or above the
        non-zero rows without replacement; ``rank`` out of range;
        ``distributed=True`` without an initialised process group or explicit
        ``num_replicas``/``rank``; the weights sum to infinity; non-integer
        weights with ``repeat_by_weight=True``.
    TypeError
        An unknown option (the message suggests the closest name), or one of
        the wrong type.

    Examples
    --------
    >>> sampler = table.create_sampler(seed=0)  # doctest: +SKIP
    >>> loader = DataLoader(dataset, batch_size=64, sampler=sampler)  # doctest: +SKIP
    >>> evaluation = table.create_sampler(weighted=False, shuffle=False)  # doctest: +SKIP
    """
    return WeightedTableSampler(table, num_samples, **options)


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
    table : WeightSource or array-like of shape (n_samples,)
        Source of the weights (its effective weights: 0 for unlabelled rows);
        read once here and again on :meth:`refresh`.

    Raises
    ------
    ValueError
        If the dataset and the table differ in length.
    """

    def __init__(self, dataset: Any, table: WeightSource | Any) -> None:
        self.dataset = dataset
        self._source = as_source(table)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the table's current weights (call between epochs after edits)."""
        w = effective_weights(self._source).astype(np.float32)
        n = len(self.dataset)
        if w.shape != (n,):
            raise ValueError(
                f"the dataset has {n} items but the table has {w.size} weights; "
                "wrap the dataset the table was built from"
            )
        self._weights = torch.from_numpy(w)

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
