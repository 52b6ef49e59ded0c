"""TensorFlow / Keras export: a ``tf.data.Dataset`` carrying or applying the table's weights.

TensorFlow is imported on first use (the ``[tf]`` extra); ``import
weightwidget`` never imports it. For plain Keras ``fit`` on arrays, use
``table.sample_weight()`` instead.

Order
-----
``mode="weights"`` shuffles the rows themselves (not batches) afresh each
epoch, from a generator seeded with ``(seed, epoch)``: data sorted by class
still gives batches that mix classes, and the same seed gives the same order.
``shuffle=False`` keeps row order, for evaluation.

Keras 3 and weight-0 rows
-------------------------
Keras 3 losses default to ``reduction="sum_over_batch_size"``: a batch's loss
is ``sum(w * loss) / batch_rows``. A row with weight 0 adds nothing to the
numerator either way, but it still counts in ``batch_rows`` if it is in the
batch. ``to_tf_dataset(..., exclude_zero_weights=True)`` (the default) drops
those rows from the dataset, so the divisor counts only included rows and the
loss is ``sum(w * loss) / (number of rows with w > 0)``;
``exclude_zero_weights=False`` keeps them (the divisor counts every row, as
when passing ``sample_weight=table.sample_weight()`` to ``fit`` on arrays).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sampling
from .protocol import (
    SamplerOptions,
    TfDatasetOptions,
    as_source,
    check_seed,
    effective_weights,
    takes_options,
)

if TYPE_CHECKING:
    import tensorflow as tf_types

    from .protocol import WeightSource

__all__ = ["to_tf_dataset"]


def import_tensorflow() -> Any:
    """Import and return ``tensorflow``, or raise an ImportError naming the extra."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(
            "to_tf_dataset needs TensorFlow. Install it with "
            '`pip install "weightwidget[tf]"` (tensorflow-cpu).'
        ) from exc
    return tf


def _as_features(features: Any, n: int) -> Any:
    """Return features as an ndarray, or a dict/tuple of ndarrays, each of length ``n``."""
    if isinstance(features, Mapping):
        out: Any = {str(k): np.asarray(v) for k, v in features.items()}
        items = list(out.items())
    elif isinstance(features, tuple):
        out = tuple(np.asarray(v) for v in features)
        items = [(str(i), v) for i, v in enumerate(out)]
    else:
        out = np.asarray(features)
        items = [("features", out)]
    if not items:
        raise ValueError("features must hold at least one array")
    for key, arr in items:
        if arr.ndim == 0 or arr.shape[0] != n:
            shape = arr.shape
            raise ValueError(
                f"features {key!r} must have one entry per table row ({n}); got shape {shape}"
            )
    return out


def _take(features: Any, rows: np.ndarray) -> Any:
    if isinstance(features, dict):
        return {k: v[rows] for k, v in features.items()}
    if isinstance(features, tuple):
        return tuple(v[rows] for v in features)
    return features[rows]


@takes_options(TfDatasetOptions)
def to_tf_dataset(  # noqa: D417 ({options} documents them)
    table: WeightSource | Any, features: Any, labels: Any = None, **options: Any
) -> tf_types.data.Dataset:
    """Return a ``tf.data.Dataset`` over the table's rows for Keras ``fit``/``evaluate``.

    Unlabelled rows (``label_codes < 0``) are left out whatever their weight;
    the weights are read once, here (the current revision).

    Parameters
    ----------
    table : WeightSource
        Source of the weights: a ``WeightTable`` or any
        :class:`~weightwidget.protocol.WeightSource`.
    features : array-like of shape (n_samples, ...), or dict / tuple of such
        Model inputs in the table's row order.
    labels : array-like of shape (n_samples, ...), default=None
        Targets; None means ``table.label_codes``, the index of each row's label
        in ``table.classes`` (what ``SparseCategoricalCrossentropy`` expects).
    {options}

    Returns
    -------
    tf.data.Dataset
        With ``shuffle=True`` (or ``mode="resample"``) each iteration of the
        dataset (each Keras epoch) is a fresh, seeded order.

    Raises
    ------
    ValueError
        Unknown ``mode``, lengths that differ from the table's, ``batch_size``
        not positive, weights that sum to infinity, or no row left to yield.
    TypeError
        An unknown option, or one of the wrong type.
    ImportError
        If TensorFlow is not installed.

    Examples
    --------
    >>> ds = table.to_tf_dataset(x, batch_size=32, seed=0)  # doctest: +SKIP
    >>> model.fit(ds, epochs=3)  # doctest: +SKIP
    """
    opts = TfDatasetOptions.from_call("to_tf_dataset", options)
    source = as_source(table)
    weights = effective_weights(source)
    n = weights.size
    x = _as_features(features, n)
    codes = np.asarray(source.label_codes)
    # label codes may be stored as int8; Keras' sparse losses expect int32/int64
    y = codes.astype(np.int64) if labels is None else np.asarray(labels)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"labels must have one entry per table row ({n}); got shape {y.shape}")
    labelled = codes >= 0
    tf = import_tensorflow()
    seed = check_seed(opts.seed)

    if opts.mode == "weights":
        rows = np.flatnonzero(weights > 0 if opts.exclude_zero_weights else labelled)
        w = weights.astype(np.float32)
        if not opts.shuffle:  # row order: the rows as tensors, no per-epoch work
            ds = tf.data.Dataset.from_tensor_slices((_take(x, rows), y[rows], w[rows]))
            return ds.batch(opts.batch_size) if opts.batch_size else ds
        if rows.size == 0:
            raise ValueError(
                "no rows to yield: every row has weight 0 or no label; include some rows "
                "or pass exclude_zero_weights=False"
            )
        order = _per_epoch(
            tf, rows.size, lambda rng: _sampling.shuffled(rows, rng), seed, opts.batch_size
        )
        return _gathered(tf, order, x, y, w)

    plan = _sampling.make_plan(
        weights,
        SamplerOptions(
            replacement=True, exclude_zero_weights=opts.exclude_zero_weights, shuffle=opts.shuffle
        ),
        n_labelled=int(np.count_nonzero(labelled)),
    )
    k = plan.num_samples
    draws = _per_epoch(
        tf, k, lambda rng: _sampling.epoch_sequence(plan, k, rng), seed, opts.batch_size
    )
    return _gathered(tf, draws, x, y)


def _per_epoch(
    tf: Any, size: int, make: Callable[[Any], np.ndarray], seed: int, batch_size: int | None
) -> Any:
    """A dataset of ``size`` row ids that calls ``make(rng)`` afresh each epoch.

    tf.data calls the generator once per iteration of the dataset, i.e. once
    per Keras epoch; epoch ``e`` uses the generator of ``(seed, e)``, as the
    torch samplers do. With ``batch_size`` the generator yields the ids a batch
    at a time (the last batch may be short); unbatching and batching again in
    tf.data costs about a microsecond per row (10 s an epoch at 10M rows).
    """
    epoch = [0]

    def epoch_rows() -> Any:
        e = epoch[0]
        epoch[0] += 1
        rows = make(_sampling.epoch_rng(seed, e))
        if not batch_size:
            yield rows
            return
        for start in range(0, rows.size, batch_size):
            yield rows[start : start + batch_size]

    ds = tf.data.Dataset.from_generator(
        epoch_rows, output_signature=tf.TensorSpec(shape=(None,), dtype=tf.int64)
    )
    if batch_size:
        return ds.apply(tf.data.experimental.assert_cardinality(-(-size // batch_size)))
    return ds.unbatch().apply(tf.data.experimental.assert_cardinality(size))


def _gathered(tf: Any, rows: Any, *arrays: Any) -> Any:
    """Map a dataset of row ids (batches of them, so gathers are vectorised) to the arrays' rows."""
    tensors = [tf.nest.map_structure(tf.convert_to_tensor, a) for a in arrays]

    def gather(i: Any) -> Any:
        return tuple(tf.nest.map_structure(lambda a: tf.gather(a, i), t) for t in tensors)

    return rows.map(gather)
