"""What the exports read from a table: the ``WeightSource`` protocol and the sampler options.

Samplers (:mod:`weightwidget.samplers`), ``tf.data`` datasets
(:mod:`weightwidget.tf`) and ``sample_weight`` read a table through one small
protocol, :class:`WeightSource`, which :class:`~weightwidget.WeightTable`
implements; any object with the same five members works too (a test double, a
view of another store). A plain array of weights is accepted wherever a table
is and is wrapped in :class:`ArrayWeights`.

Every export trains on the *effective* weights (:func:`effective_weights`): the
stored weight where the row is labelled, 0 where it is not (``label_codes <
0``), validated once by :mod:`weightwidget._checks`.

The options of ``create_sampler`` are declared once, in :class:`SamplerOptions`;
:func:`takes_options` gives each function that accepts them (the table method,
:func:`weightwidget.samplers.create_sampler`, the sampler class) their full
signature and their documentation, so the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import os
import re
import textwrap
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from ._checks import check_weights, did_you_mean

__all__ = [
    "ArrayWeights",
    "SamplerOptions",
    "TfDatasetOptions",
    "WeightSource",
    "as_source",
    "effective_weights",
    "is_weight_source",
    "takes_options",
]


class WeightSource(Protocol):
    """The read side of a weight table, as every export sees it.

    :class:`~weightwidget.WeightTable` implements it. Implement these five
    members to feed your own object to ``create_sampler``, ``to_tf_dataset`` or
    ``sample_weight``.

    Attributes
    ----------
    weights : numpy.ndarray of shape (n_samples,), float64
        Current weights in dataset order, read-only; finite and >= 0.
    label_codes : numpy.ndarray of shape (n_samples,), int
        Index of each row's label in :attr:`classes`; ``-1`` (any negative
        value) marks an unlabelled row, which no export trains on.
    classes : numpy.ndarray of shape (n_classes,)
        The class labels that ``label_codes`` index.
    revision : int
        Revision the weights belong to; live samplers redraw when it changes.

    Methods
    -------
    latest()
        Return the source at its newest revision (may be ``self``, updated).
    """

    @property
    def weights(self) -> np.ndarray: ...  # noqa: D102

    @property
    def label_codes(self) -> np.ndarray: ...  # noqa: D102

    @property
    def classes(self) -> np.ndarray: ...  # noqa: D102

    @property
    def revision(self) -> int: ...  # noqa: D102

    def latest(self) -> WeightSource: ...  # noqa: D102


_MEMBERS = ("weights", "label_codes", "classes", "revision", "latest")


class ArrayWeights:
    """A fixed weight vector as a :class:`WeightSource`.

    Every row is labelled, with one class (``classes == [0]``); the revision is
    always 0 and :meth:`latest` returns the same object.

    Parameters
    ----------
    weights : array-like of shape (n_samples,)
        Finite, non-negative weights. Not copied: exports snapshot what they
        need when they are built, so change the array before building one.

    Raises
    ------
    ValueError
        If ``weights`` is not 1-D. Its values are checked by the export that
        reads them (:func:`effective_weights`).
    """

    def __init__(self, weights: Any) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights must be 1-D; got an array of shape {w.shape}")
        self._weights = w.view()  # validated where it is read: effective_weights
        self._weights.flags.writeable = False  # the view only: the caller's array is untouched
        # one shared zero, so a 1e8-row vector costs no memory for its codes
        self._codes = np.broadcast_to(np.int8(0), w.shape)

    @property
    def weights(self) -> np.ndarray:
        """The weights, read-only float64."""
        return self._weights

    @property
    def label_codes(self) -> np.ndarray:
        """All zeros: every row is labelled, with the one class."""
        return self._codes

    @property
    def classes(self) -> np.ndarray:
        """``array([0])``: one class."""
        return np.zeros(1, dtype=np.int64)

    @property
    def revision(self) -> int:
        """Always 0."""
        return 0

    def latest(self) -> ArrayWeights:
        """Return ``self``: a fixed vector has no newer revision."""
        return self

    def __len__(self) -> int:
        return int(self._weights.size)

    def __repr__(self) -> str:
        return f"ArrayWeights(n_samples={self._weights.size})"


def _has_member(obj: Any, name: str) -> bool:
    # getattr_static: a property (label_codes may factorise a column) is not evaluated
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def is_weight_source(obj: Any) -> bool:
    """Whether ``obj`` has every member of :class:`WeightSource` (nothing is evaluated)."""
    return all(_has_member(obj, m) for m in _MEMBERS)


def as_source(obj: Any) -> WeightSource:
    """Return ``obj`` if it is a :class:`WeightSource`, else wrap an array in :class:`ArrayWeights`.

    Raises
    ------
    TypeError
        If ``obj`` has some members of the protocol but not all (naming the
        missing ones), or is a string or path (open the table first).
    ValueError
        If ``obj`` is an array that is not 1-D (its values are checked where
        they are read, by :func:`effective_weights`).
    """
    present = [m for m in _MEMBERS if _has_member(obj, m)]
    if len(present) == len(_MEMBERS):
        return obj  # type: ignore[no-any-return]
    if isinstance(obj, (str, bytes, os.PathLike)):
        raise TypeError(
            f"expected a WeightTable or an array of weights; got the path {obj!r} "
            "(open it first with WeightTable.open(path))"
        )
    if len(present) >= 2:
        missing = [m for m in _MEMBERS if m not in present]
        raise TypeError(
            f"{type(obj).__name__} is not a WeightSource: it lacks {', '.join(missing)}; "
            f"a source needs {', '.join(_MEMBERS)} (see weightwidget.protocol.WeightSource)"
        )
    return ArrayWeights(obj)


def effective_weights(source: WeightSource) -> np.ndarray:
    """Return the weights every export trains on: the weight where labelled, else 0.

    The stored weights are validated here (finite, >= 0, a finite total), so
    each export refuses a bad vector with the same message.

    Parameters
    ----------
    source : WeightSource
        The table (or any source).

    Returns
    -------
    numpy.ndarray of shape (n_samples,), float64
        The source's own (read-only) array when every row is labelled, else a
        new array with 0 at unlabelled rows.

    Raises
    ------
    ValueError
        If the weights are not 1-D, hold NaN, infinite or negative values, sum
        to infinity, or if ``label_codes`` does not have one entry per row.
    """
    w = np.asarray(source.weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D; got an array of shape {w.shape}")
    codes = np.asarray(source.label_codes)
    if codes.shape != w.shape:
        raise ValueError(
            f"label_codes has shape {codes.shape} but weights has shape {w.shape}; "
            "a WeightSource needs one label code per row"
        )
    if codes.size and codes.min() < 0:
        w = np.where(codes >= 0, w, 0.0)
    check_weights(w)
    return w


# ---------------------------------------------------------------------------- options


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} should be a positive integer, but got {name}={value!r}")
    if value <= 0:
        raise ValueError(f"{name} should be a positive integer, but got {name}={value}")
    return int(value)


def check_int(name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise ``TypeError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {name}={value!r}")
    return int(value)


def check_seed(seed: Any) -> int:
    """Return ``seed`` as a non-negative int, drawing a fresh one from the OS when None."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0; got seed={seed!r}")
    return int(seed)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {name}={value!r}")
    return bool(value)


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """The options of ``create_sampler``, declared once (validated on construction).

    Parameters
    ----------
    num_samples : int, default=None
        Draws per epoch over all ranks. None means one per included row (weight
        > 0 and labelled), or one per labelled row when
        ``exclude_zero_weights=False``. With ``distributed=True`` each rank
        yields ``ceil(num_samples / num_replicas)`` of one shared draw. Must be
        None with ``repeat_by_weight=True`` (the weights fix the epoch's length).
    replacement : bool, default=True
        If False, each row appears at most once per epoch (weighted sampling
        without replacement: Efraimidis-Spirakis keys, yielded in draw order).
    exclude_zero_weights : bool, default=True
        Only affects the default ``num_samples``. Rows with weight 0 and
        unlabelled rows are never drawn either way.
    seed : int, default=None
        Seed of the per-epoch generator ``(seed, epoch)``. None picks one at
        random (see the sampler's ``seed``), except with ``distributed=True``
        where it is 0, as in ``DistributedSampler``, so that all ranks agree
        without communicating.
    live : bool, default=False
        If True, call ``table.latest()`` at the start of every epoch and draw
        from that revision, so edits made in the widget (or by another process)
        between epochs apply to the next epoch without rebuilding the
        DataLoader. Needs a table, not a plain array.
    distributed : bool, default=False
        If True, all ranks compute the same global sequence of
        ``ceil(num_samples / num_replicas) * num_replicas`` indices and rank
        ``r`` keeps positions ``r, r + num_replicas, ...``: disjoint, equal
        shares whose union follows the weights. When a sequence without
        repeats (``replacement=False``, ``repeat_by_weight=True``, or
        ``weighted=False, shuffle=False``) is shorter than that, it is padded
        by repeating its first indices, as ``DistributedSampler`` does.
    num_replicas : int, default=None
        Number of ranks (only with ``distributed=True``); defaults to
        ``torch.distributed.get_world_size()``.
    rank : int, default=None
        This rank, in ``[0, num_replicas)`` (only with ``distributed=True``);
        defaults to ``torch.distributed.get_rank()``.
    weighted : bool, default=True
        If False, ignore the weights' values: every included row (weight > 0
        and labelled) is equally likely, with or without replacement.
    shuffle : bool, default=True
        If False, yield a deterministic order instead of draw order, for
        evaluation: with ``weighted=False``, the included rows in increasing
        row id, cycling from the first when ``num_samples`` exceeds them (no
        randomness, the seed is unused); with ``weighted=True``, the same rows
        the shuffled epoch would draw (same seed and epoch), sorted by row id;
        with ``repeat_by_weight=True``, row ``i`` repeated ``w_i`` times in row
        order.
    repeat_by_weight : bool, default=False
        If True, weights are repeat counts: each epoch yields row ``i`` exactly
        ``w_i`` times (shuffled unless ``shuffle=False``), ``sum(w)`` indices in
        all. Weights must be whole numbers (a weight of 2.5 raises; round them
        first). Cannot be combined with ``replacement=False``,
        ``weighted=False`` or ``num_samples``.

    Raises
    ------
    TypeError
        An option of the wrong type (``replacement="no"``, ``num_samples=2.5``).
    ValueError
        ``num_samples`` not positive; a negative seed; ``num_replicas`` or
        ``rank`` without ``distributed=True``; ``repeat_by_weight=True`` with an
        option it cannot honour.
    """

    num_samples: int | None = None
    replacement: bool = True
    exclude_zero_weights: bool = True
    seed: int | None = None
    live: bool = False
    distributed: bool = False
    num_replicas: int | None = None
    rank: int | None = None
    weighted: bool = True
    shuffle: bool = True
    repeat_by_weight: bool = False

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.default is True or f.default is False:
                object.__setattr__(self, f.name, _check_bool(f.name, getattr(self, f.name)))
        if self.num_samples is not None:
            object.__setattr__(
                self, "num_samples", check_positive_int("num_samples", self.num_samples)
            )
        if self.seed is not None:
            object.__setattr__(self, "seed", check_seed(self.seed))
        if not self.distributed and (self.num_replicas is not None or self.rank is not None):
            raise ValueError(
                f"num_replicas={self.num_replicas!r} and rank={self.rank!r} only apply with "
                "distributed=True; pass distributed=True or leave them None"
            )
        if self.repeat_by_weight:
            clash = [
                text
                for bad, text in (
                    (self.num_samples is not None, f"num_samples={self.num_samples}"),
                    (not self.replacement, "replacement=False"),
                    (not self.weighted, "weighted=False"),
                )
                if bad
            ]
            if clash:
                raise ValueError(
                    f"repeat_by_weight=True cannot be combined with {', '.join(clash)}: each "
                    "epoch yields row i exactly w_i times (sum(w) indices, rows repeat); drop "
                    f"{' and '.join(clash)}, or use repeat_by_weight=False"
                )

    @classmethod
    def from_call(cls, func: str, num_samples: Any, options: dict[str, Any]) -> SamplerOptions:
        """Build from a call's ``num_samples`` and ``**options``, naming ``func`` on a typo."""
        return _from_call(cls, func, {"num_samples": num_samples, **options})


_MODES = ("weights", "resample")


@dataclasses.dataclass(frozen=True)
class TfDatasetOptions:
    """The options of ``to_tf_dataset``, declared once (validated on construction).

    Parameters
    ----------
    mode : {"weights", "resample"}, default="weights"
        ``"weights"`` yields ``(x, y, w)``, ``w`` float32, for weighted losses
        and metrics. ``"resample"`` yields ``(x, y)`` for rows drawn with
        replacement in proportion to the weights: one draw per included row
        each epoch (per labelled row when ``exclude_zero_weights=False``), the
        same draws as ``create_sampler`` for the same seed and epoch.
    batch_size : int, default=None
        If given, batch the dataset (the last batch may be smaller).
    seed : int, default=None
        Seed of each epoch's order (epoch ``e`` uses ``(seed, e)``); None is
        random. The same seed gives the same order.
    exclude_zero_weights : bool, default=True
        In ``"weights"`` mode, drop rows with weight 0 (they then do not count
        in Keras' ``sum_over_batch_size`` divisor; see :mod:`weightwidget.tf`).
        In ``"resample"`` mode, whether the draws per epoch count only rows
        with a weight > 0. Unlabelled rows are left out either way.
    shuffle : bool, default=True
        ``"weights"`` mode: shuffle the rows (not batches) afresh each epoch,
        seeded, so batches of class-sorted data mix classes; False keeps row
        order (for evaluation). ``"resample"`` mode: False yields each epoch's
        draws sorted by row id, as ``create_sampler(shuffle=False)``.

    Raises
    ------
    ValueError
        Unknown ``mode``, ``batch_size`` not positive, a negative seed.
    TypeError
        An option of the wrong type.
    """

    mode: str = "weights"
    batch_size: int | None = None
    seed: int | None = None
    exclude_zero_weights: bool = True
    shuffle: bool = True

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be 'weights' or 'resample'; got mode={self.mode!r}")
        if self.batch_size is not None:
            size = check_positive_int("batch_size", self.batch_size)
            object.__setattr__(self, "batch_size", size)
        if self.seed is not None:
            object.__setattr__(self, "seed", check_seed(self.seed))
        for name in ("exclude_zero_weights", "shuffle"):
            object.__setattr__(self, name, _check_bool(name, getattr(self, name)))

    @classmethod
    def from_call(cls, func: str, options: dict[str, Any]) -> TfDatasetOptions:
        """Build from a call's ``**options``, naming ``func`` on a typo."""
        return _from_call(cls, func, options)


_Opt = TypeVar("_Opt")


def _from_call(cls: type[_Opt], func: str, values: dict[str, Any]) -> _Opt:
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise TypeError(
            f"{func}() got an unexpected keyword argument {unknown[0]!r}"
            f"{did_you_mean(unknown[0], names)}; its options are {', '.join(names)}"
        )
    return cls(**values)


_F = TypeVar("_F", bound=Any)
_PLACEHOLDER = re.compile(r"^([ \t]*)\{options\}[ \t]*$", re.MULTILINE)


def _parameter_docs(cls: type) -> str:
    """The ``Parameters`` entries of ``cls``'s numpy docstring, dedented."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    match = re.search(r"^Parameters\n-+\n(.*?)(?=\n\n[A-Z][a-z]+\n-+\n|\Z)", doc, re.S | re.M)
    if match is None:
        raise ValueError(f"{cls.__name__}'s docstring has no Parameters section")
    return match.group(1).rstrip()


def takes_options(options_cls: type) -> Callable[[_F], _F]:
    """Give ``fn(..., **options)`` the options of ``options_cls`` as its signature and docs.

    The fields of the dataclass ``options_cls`` that ``fn`` does not name
    explicitly become keyword-only parameters of ``inspect.signature(fn)``
    (what ``help()``, IDEs and Jupyter show), with their defaults; a line
    ``{options}`` in ``fn``'s docstring becomes the numpy ``Parameters`` entries
    of ``options_cls``. The function itself validates ``**options`` by building
    ``options_cls`` (see :meth:`SamplerOptions.from_call`). Applied to a class,
    it fills the class docstring and decorates ``__init__``.
    """
    docs = _parameter_docs(options_cls)
    fields = dataclasses.fields(options_cls)

    def fill(obj: Any) -> None:
        if obj.__doc__ and "{options}" in obj.__doc__:
            doc = inspect.cleandoc(obj.__doc__)
            obj.__doc__ = _PLACEHOLDER.sub(lambda m: textwrap.indent(docs, m.group(1)), doc)

    def decorate(fn: _F) -> _F:
        if isinstance(fn, type):
            fill(fn)
            decorate(fn.__init__)
            return fn
        sig = inspect.signature(fn)
        explicit = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        if len(explicit) == len(sig.parameters):
            raise TypeError(f"{fn.__qualname__} must take **options")
        taken = {p.name for p in explicit}
        extra = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
            for f in fields
            if f.name not in taken
        ]
        fn.__signature__ = sig.replace(parameters=[*explicit, *extra])
        fill(fn)
        return fn

    return decorate
