"""TensorFlow / Keras export: a ``tf.data.Dataset`` carrying or applying the table's weights.

TensorFlow is imported on first use (the ``[tf]`` extra); ``import
weightwidget`` never imports it. For plain Keras ``fit`` on arrays, use
``table.sample_weight()`` instead.

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sampling

if TYPE_CHECKING:
    import tensorflow as tf_types

    from .table import WeightTable

__all__ = ["to_tf_dataset"]

_MODES = ("weights", "resample")


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


def to_tf_dataset(
    table: WeightTable,
    features: Any,
    labels: Any = None,
    *,
    mode: str = "weights",
    batch_size: int | None = None,
    seed: int | None = None,
    exclude_zero_weights: bool = True,
) -> tf_types.data.Dataset:
    """Return a ``tf.data.Dataset`` over the table's rows for Keras ``fit``/``evaluate``.

    Parameters
    ----------
    table : WeightTable
        Source of the weights (the current revision, read once here).
    features : array-like of shape (n_samples, ...), or dict / tuple of such
        Model inputs in the table's row order.
    labels : array-like of shape (n_samples, ...), default=None
        Targets; None means ``table.label_codes``, the index of each row's label
        in ``table.classes`` (what ``SparseCategoricalCrossentropy`` expects).
    mode : {"weights", "resample"}, default="weights"
        ``"weights"`` yields ``(x, y, w)`` in row order, ``w`` float32, for
        weighted losses and metrics. ``"resample"`` yields ``(x, y)`` for rows
        drawn with replacement in proportion to the weights: one draw per
        non-zero row each epoch (per row when ``exclude_zero_weights=False``),
        a fresh, seeded draw each time the dataset is iterated, using the same
        draws as :func:`weightwidget.samplers.create_sampler` for the same seed.
    batch_size : int, default=None
        If given, batch the dataset (the last batch may be smaller).
    seed : int, default=None
        Seed of the resampling (epoch ``e`` uses ``(seed, e)``); None is random.
        Ignored by ``mode="weights"``, which keeps row order (shuffle it yourself).
    exclude_zero_weights : bool, default=True
        In ``"weights"`` mode, drop rows with weight 0 (they then do not count in
        Keras' ``sum_over_batch_size`` divisor; see the module notes). In
        ``"resample"`` mode, whether the draws per epoch count only non-zero rows.
        Rows with weight 0 are never drawn.

    Returns
    -------
    tf.data.Dataset

    Raises
    ------
    ValueError
        Unknown ``mode``, lengths that differ from the table's, ``batch_size``
        not positive, or (``"resample"``) all weights 0.
    ImportError
        If TensorFlow is not installed.

    Examples
    --------
    >>> ds = table.to_tf_dataset(x, batch_size=32)  # doctest: +SKIP
    >>> model.fit(ds, epochs=3)  # doctest: +SKIP
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be 'weights' or 'resample'; got mode={mode!r}")
    if batch_size is not None:
        batch_size = _sampling.check_positive_int("batch_size", batch_size)
    n = len(table)
    x = _as_features(features, n)
    # label codes may be stored as int8; Keras' sparse losses expect int32/int64
    y = np.asarray(table.label_codes, dtype=np.int64) if labels is None else np.asarray(labels)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"labels must have one entry per table row ({n}); got shape {y.shape}")
    weights = _sampling.check_weights(table.weights)
    tf = import_tensorflow()

    if mode == "weights":
        w = weights.astype(np.float32)
        if exclude_zero_weights:
            keep = np.flatnonzero(weights > 0)
            x, y, w = _take(x, keep), y[keep], w[keep]
        ds = tf.data.Dataset.from_tensor_slices((x, y, w))
        return ds.batch(batch_size) if batch_size else ds

    prep = _sampling.prepare(weights, copy=False)
    k = _sampling.resolve_num_samples(
        prep, None, replacement=True, exclude_zero_weights=exclude_zero_weights
    )
    rng_seed = _sampling.check_seed(seed)
    epoch = [0]

    def epoch_indices() -> Any:
        # tf.data calls this once per iteration of the dataset, i.e. once per epoch.
        e = epoch[0]
        epoch[0] += 1
        yield _sampling.draw_with_replacement(prep, k, _sampling.epoch_rng(rng_seed, e))

    indices = (
        tf.data.Dataset.from_generator(
            epoch_indices, output_signature=tf.TensorSpec(shape=(None,), dtype=tf.int64)
        )
        .unbatch()
        .apply(tf.data.experimental.assert_cardinality(k))
    )
    tx = tf.nest.map_structure(tf.convert_to_tensor, x)
    ty = tf.convert_to_tensor(y)

    def gather(i: Any) -> Any:
        return tf.nest.map_structure(lambda a: tf.gather(a, i), tx), tf.gather(ty, i)

    if batch_size:
        indices = indices.batch(batch_size)
    return indices.map(gather)
