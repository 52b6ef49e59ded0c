"""Per-sample metrics back into the table, weighted aggregates, and loss-driven reweighting.

Column scheme
-------------
:func:`collect_metrics` with ``run="r1"`` writes four columns to the table
(persisted in its store, shown by the widget, usable in filters such as
``r1_loss > 2 and r1_correct == 0``):

``r1_loss``
    Per-sample cross-entropy, float64 (natural log).
``r1_pred``
    Predicted class, as a value of ``table.classes``.
``r1_confidence``
    Probability of the predicted class, float64.
``r1_correct``
    1.0 if ``r1_pred`` equals the label, else 0.0 (float64, so it can be NaN).

The predictions' class axis indexes ``table.classes`` (the sorted distinct
labels): column ``j`` scores class ``table.classes[j]``, as with
``table.label_codes`` and ``to_tf_dataset``'s default labels.

Each call is recorded as a run (:meth:`WeightTable.runs`): its name, the
revision it was computed at, the time, the columns written and the weighted
aggregates.

Two weighted losses
-------------------
``loss_reduction="weighted_mean"`` (the default) gives ``sum(w * l) / sum(w)``:
the loss of the distribution the weights describe, unchanged when every weight
is scaled. Keras 3 reports ``sum(w * l) / n`` (its ``"sum_over_batch_size"``
reduction, averaged over batches by their size), where ``n`` counts every row
passed, weight 0 included; ``loss_reduction="sum_over_batch_size"`` returns
that number, so it can be compared with ``model.evaluate``. With
``sample_weight=table.sample_weight()`` Keras counts the weight-0 rows in
``n``; ``to_tf_dataset`` drops them by default, which
``exclude_zero_weights=True`` matches. The two agree when the weights average
1 over the counted rows.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._checks import check_choice

if TYPE_CHECKING:
    from .table import WeightTable

__all__ = ["collect_metrics", "focus_on_hard", "metric_columns"]

# Probabilities are clipped as Keras' categorical cross-entropy clips them, so a
# probability of 0 gives a large finite loss (-log 1e-7 = 16.1) and not inf.
_EPSILON = 1e-7
_RUN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SUFFIXES = ("loss", "pred", "confidence", "correct")
LOSS_REDUCTIONS = ("weighted_mean", "sum_over_batch_size")


def metric_columns(run: str) -> dict[str, str]:
    """Return the column names :func:`collect_metrics` writes for ``run``.

    Parameters
    ----------
    run : str
        The run name, an identifier (letters, digits, underscores).

    Returns
    -------
    dict of str to str
        ``{"loss": f"{run}_loss", "pred": ..., "confidence": ..., "correct": ...}``.
    """
    if not isinstance(run, str) or not _RUN.match(run):
        raise ValueError(
            f"run must be an identifier (letters, digits and underscores, not starting "
            f"with a digit) so that filters like '{{run}}_loss > 2' parse; got run={run!r}"
        )
    return {s: f"{run}_{s}" for s in _SUFFIXES}


def _to_numpy(values: Any, *, what: str = "predictions") -> np.ndarray:
    """Convert a numpy/torch/tensorflow array (or nested list) to a float64 ndarray."""
    if hasattr(values, "detach"):  # torch.Tensor
        values = values.detach().cpu().numpy()
    elif hasattr(values, "numpy") and not isinstance(values, np.ndarray):  # tf.Tensor
        values = values.numpy()
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be an array of numbers; got {type(values).__name__}") from exc


def _log_probabilities(pred: np.ndarray) -> tuple[np.ndarray, str]:
    """Return log-probabilities of shape (n, C) and whether the input was "probabilities"."""
    in_unit = bool(np.all((pred >= 0) & (pred <= 1)))
    if in_unit and np.allclose(pred.sum(axis=1), 1.0, rtol=0, atol=1e-4):
        p = pred / pred.sum(axis=1, keepdims=True)
        return np.log(np.clip(p, _EPSILON, 1 - _EPSILON)), "probabilities"
    shifted = pred - pred.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)), "logits"


def _binary(pred: np.ndarray) -> np.ndarray:
    """Turn one score per row (probability or logit of class 1) into two columns."""
    p1 = pred.reshape(-1)
    if np.all((p1 >= 0) & (p1 <= 1)):
        return np.stack([1 - p1, p1], axis=1)
    return np.stack([np.zeros_like(p1), p1], axis=1)  # logit: softmax([0, z]) = sigmoid


def _codes_for(table: WeightTable, labels: Any) -> np.ndarray:
    n = len(table)
    if labels is None:
        return np.asarray(table.label_codes, dtype=np.intp)
    values = np.asarray(labels)
    if values.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per table row; got {values.shape}")
    codes = pd.Index(table.classes).get_indexer(values)
    if (codes < 0).any():
        unknown = pd.unique(values[codes < 0])[:5]
        raise ValueError(
            f"labels {[_plain(v) for v in unknown]!r} are not classes of the table; "
            f"known classes: {[_plain(v) for v in table.classes]!r}"
        )
    return codes.astype(np.intp)


def collect_metrics(
    table: WeightTable,
    predictions: Any,
    *,
    labels: Any = None,
    run: str = "name",
    exclude_zero_weights: bool = False,
    loss_reduction: str = "weighted_mean",
) -> dict[str, Any]:
    """Store per-sample loss, prediction, confidence and correctness; return weighted aggregates.

    Parameters
    ----------
    table : WeightTable
        The table, in the same row order as ``predictions``.
    predictions : array-like of shape (n_samples, n_classes)
        Logits or probabilities (numpy, torch or tensorflow). Column ``j`` scores
        ``table.classes[j]``. Rows within [0, 1] that sum to 1 (within 1e-4) are
        read as probabilities (clipped to [1e-7, 1 - 1e-7], as Keras does);
        anything else as logits (softmax). With two classes, shape
        ``(n_samples,)`` or ``(n_samples, 1)`` is the probability (or logit) of
        ``table.classes[1]``.
    labels : array-like of shape (n_samples,), default=None
        True labels as values of ``table.classes``; None uses the table's labels.
    run : str, default="name"
        Run name: the columns are ``{run}_loss``, ``{run}_pred``,
        ``{run}_confidence`` and ``{run}_correct`` (see the module notes).
        Collecting the same run again replaces its columns.
    exclude_zero_weights : bool, default=False
        If True, rows with weight 0 are absent: their ``{run}_loss``,
        ``{run}_confidence`` and ``{run}_correct`` are NaN (``{run}_pred`` is
        still stored) and they are not counted in ``rows`` nor in the unweighted
        aggregates. (They add nothing to the weighted aggregates either way,
        but they count in ``n`` for ``loss_reduction="sum_over_batch_size"``
        when kept.)
    loss_reduction : {"weighted_mean", "sum_over_batch_size"}, default="weighted_mean"
        How ``"loss"`` is reduced (see the module notes): ``sum(w * l) /
        sum(w)``, or Keras 3's ``sum(w * l) / n`` over the ``n`` counted rows.

    Returns
    -------
    dict
        ``"accuracy"``: ``sum(w * correct) / sum(w)``; ``"loss"``:
        ``sum(w * loss) / sum(w)`` (or ``/ n``, see ``loss_reduction``);
        ``"loss_reduction"``: the reduction used; ``"per_class_recall"``: class ->
        ``sum(w * correct) / sum(w)`` over that class's rows (NaN for a class
        with no weight); ``"unweighted_accuracy"``, ``"unweighted_loss"``: plain
        means over the counted rows; ``"rows"``: rows counted; ``"weight_sum"``;
        ``"columns"``: the column names written; ``"input"``: ``"logits"`` or
        ``"probabilities"``. Aggregates are NaN when there is no weight.

    Raises
    ------
    ValueError
        Wrong shape (the class axis must match ``table.classes``), non-finite
        predictions, unknown labels, a ``run`` that is not an identifier, or
        an unknown ``loss_reduction``.

    Examples
    --------
    >>> m = ww.collect_metrics(t, model.predict(x), run="epoch3")  # doctest: +SKIP
    >>> t.set_weights("epoch3_loss > 5", 0, message="likely mislabelled")  # doctest: +SKIP
    """
    names = metric_columns(run)
    check_choice(loss_reduction, LOSS_REDUCTIONS, what="loss_reduction")
    n, classes = len(table), np.asarray(table.classes)
    c = len(classes)
    pred = _to_numpy(predictions)
    if c == 2 and (pred.shape == (n,) or pred.shape == (n, 1)):
        pred = _binary(pred)
    if pred.shape != (n, c):
        raise ValueError(
            f"predictions must have shape (n_rows, n_classes) = ({n}, {c}), one column per "
            f"class of table.classes {[_plain(v) for v in classes[:10]]!r}; got shape {pred.shape}"
        )
    if not np.isfinite(pred).all():
        row = int(np.flatnonzero(~np.isfinite(pred).all(axis=1))[0])
        raise ValueError(f"predictions must be finite; row {row} holds NaN or inf")
    codes = _codes_for(table, labels)
    logp, kind = _log_probabilities(pred)
    rows = np.arange(n)
    loss = -logp[rows, codes]
    pred_code = logp.argmax(axis=1)
    confidence = np.exp(logp[rows, pred_code])
    correct = (pred_code == codes).astype(np.float64)

    weights = np.asarray(table.weights, dtype=np.float64)
    counted = weights > 0 if exclude_zero_weights else np.ones(n, dtype=bool)
    if exclude_zero_weights:
        for arr in (loss, confidence, correct):
            arr[~counted] = np.nan
    w = weights[counted]
    wsum = float(w.sum())
    lc, cc, kc = loss[counted], correct[counted], codes[counted]
    per_w = np.bincount(kc, weights=w, minlength=c)
    per_hit = np.bincount(kc, weights=w * cc, minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(per_w > 0, per_hit / per_w, np.nan)
    nan = float("nan")
    divisor = wsum if loss_reduction == "weighted_mean" else float(lc.size)
    out = {
        "accuracy": float(np.dot(w, cc) / wsum) if wsum > 0 else nan,
        "loss": float(np.dot(w, lc) / divisor) if divisor > 0 else nan,
        "loss_reduction": loss_reduction,
        "per_class_recall": {_plain(k): float(r) for k, r in zip(classes, recall, strict=True)},
        "unweighted_accuracy": float(cc.mean()) if cc.size else nan,
        "unweighted_loss": float(lc.mean()) if lc.size else nan,
        "rows": int(counted.sum()),
        "weight_sum": wsum,
        "columns": list(names.values()),
        "input": kind,
    }
    table.set_columns(
        {
            names["loss"]: loss,
            names["pred"]: classes[pred_code],
            names["confidence"]: confidence,
            names["correct"]: correct,
        },
        message=f"metrics of run {run!r}",
        run=run,
        info={"kind": "metrics", "aggregates": _json_aggregates(out)},
    )
    return out


def _json_aggregates(metrics: dict[str, Any]) -> dict[str, Any]:
    """The aggregates as JSON values: class keys as text, NaN as None."""

    def clean(v: float) -> float | None:
        return None if isinstance(v, float) and np.isnan(v) else v

    keep = ("accuracy", "loss", "loss_reduction", "unweighted_accuracy", "unweighted_loss")
    out: dict[str, Any] = {k: clean(metrics[k]) for k in keep}
    out["per_class_recall"] = {str(k): clean(v) for k, v in metrics["per_class_recall"].items()}
    out.update(rows=metrics["rows"], weight_sum=metrics["weight_sum"], input=metrics["input"])
    return out


def _plain(value: Any) -> Any:
    """Return a numpy scalar as a Python scalar, so dict keys print like the labels."""
    return value.item() if isinstance(value, np.generic) else value


def focus_on_hard(
    table: WeightTable,
    column: str,
    *,
    gamma: float = 1.0,
    where: Any = None,
    message: str | None = None,
) -> int:
    """Reweight rows in proportion to a metric column (``loss ** gamma``) to focus on hard ones.

    Among the rows ``where`` selects that currently have a non-zero weight
    (excluded rows stay excluded), set ``w_i = column_i ** gamma * s`` with
    ``s`` chosen so these rows keep their total weight: the rest of the table
    and the selection's overall share are unchanged. One revision, via
    ``table.set_weights``.

    Parameters
    ----------
    table : WeightTable
        The table to edit.
    column : str
        A numeric column, for example ``"r1_loss"`` from :func:`collect_metrics`.
    gamma : float, default=1.0
        Focus strength: 0 gives equal weights, larger values favour high values.
    where : str, array-like of bool or int, slice or None, default=None
        Which rows to reweight (as in ``table.set_weights``); None is all rows.
    message : str, default=None
        Revision message; generated when None.

    Returns
    -------
    int
        The new revision.

    Raises
    ------
    ValueError
        ``gamma`` negative or not finite; the column has NaN, inf or negative
        values on the selected rows; all selected values are 0; no selected row
        has a non-zero weight.

    Examples
    --------
    >>> focus_on_hard(t, "r1_loss", gamma=0.5, where="label == 3")  # doctest: +SKIP
    """
    try:
        g = float(gamma)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"gamma must be a number; got gamma={gamma!r}") from exc
    if not np.isfinite(g) or g < 0:
        raise ValueError(f"gamma must be finite and >= 0; got gamma={gamma!r}")
    weights = np.asarray(table.weights, dtype=np.float64)
    selected = np.asarray(table.mask(where), dtype=bool) & (weights > 0)
    ids = np.flatnonzero(selected)
    if ids.size == 0:
        raise ValueError(
            f"no row with a non-zero weight matches where={where!r}; nothing to reweight"
        )
    values = np.asarray(table.column(column), dtype=np.float64)[ids]
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        row = int(ids[np.flatnonzero(bad)[0]])
        raise ValueError(
            f"column {column!r} must be finite and >= 0 on the selected rows; got "
            f"{float(values[bad][0])!r} at row {row} ({int(bad.sum())} bad rows); "
            "narrow where= or fill the column"
        )
    new = values**g
    total = float(new.sum())
    if total <= 0:
        raise ValueError(
            f"column {column!r} is 0 on every selected row, so weights proportional to it "
            "would exclude them all; choose another column or where="
        )
    new *= float(weights[ids].sum()) / total
    if message is None:
        scope = "" if where is None else f"where {where}, " if isinstance(where, str) else ""
        message = f"focus on hard: weight ∝ {column}**{g:g} ({scope}{ids.size:,} rows)"
    return table.set_weights(ids, new, message=message)
