"""Class-balancing strategies: pure functions from class counts to class weights.

Shaped like :func:`sklearn.utils.class_weight.compute_class_weight`: they take
the number of included samples per class and return one weight per class.
:meth:`weightwidget.WeightTable.balance` applies them to rows.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_choice

__all__ = ["STRATEGIES", "class_weights"]

STRATEGIES = ("inverse_frequency", "sqrt_inverse_frequency", "effective_number", "balanced")


def class_weights(
    counts: np.ndarray, strategy: str = "inverse_frequency", *, beta: float = 0.999
) -> np.ndarray:
    """Return one weight per class from per-class sample counts.

    Parameters
    ----------
    counts : array-like of int, shape (n_classes,)
        Included samples per class. Classes with a count of 0 get weight 0.
    strategy : {"inverse_frequency", "sqrt_inverse_frequency", "effective_number", \
"balanced"}, default="inverse_frequency"
        - ``inverse_frequency``: ``n / n_c``, the inverse of the class's share;
          every class then carries the same total weight.
        - ``sqrt_inverse_frequency``: ``sqrt(n / n_c)``, a milder correction.
        - ``effective_number``: ``(1 - beta) / (1 - beta**n_c)`` (Cui et al.,
          "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019),
          normalised so the class weights sum to the number of classes, as in the
          paper.
        - ``balanced``: ``n / (k * n_c)``, scikit-learn's ``"balanced"``; the
          weights of all samples then sum to ``n``.
    beta : float, default=0.999
        For ``effective_number`` only; in [0, 1). Larger means stronger correction.

    Returns
    -------
    numpy.ndarray of float64, shape (n_classes,)

    Examples
    --------
    >>> class_weights(np.array([90, 10]), "balanced")
    array([0.55555556, 5.        ])
    """
    check_choice(strategy, STRATEGIES, what="strategy")
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    n = counts.sum()
    k = int(present.sum())
    out = np.zeros_like(counts)
    if k == 0:
        return out
    c = counts[present]
    if strategy == "inverse_frequency":
        out[present] = n / c
    elif strategy == "sqrt_inverse_frequency":
        out[present] = np.sqrt(n / c)
    elif strategy == "balanced":
        out[present] = n / (k * c)
    else:
        if not (0.0 <= beta < 1.0):
            raise ValueError(f"beta must be in [0, 1); got beta={beta!r}")
        effective = (1.0 - np.power(beta, c)) / (1.0 - beta) if beta > 0 else np.ones_like(c)
        raw = 1.0 / effective
        out[present] = raw * (k / raw.sum())
    return out
