"""Shared validation: each error text lives here once."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` hint, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_column_message(name: str, known: Iterable[str]) -> str:
    """Error text for a column name that is not in the table."""
    known = list(known)
    return (
        f"unknown column {name!r}{did_you_mean(name, known)}; "
        f"known columns: {', '.join(map(repr, known))}"
    )


def check_weight_values(
    values: np.ndarray, *, what: str = "weights", index_name: str = "position"
) -> np.ndarray:
    """Return ``values`` as float64, or raise if any is NaN, infinite or negative.

    The message names the first bad entry (``at <index_name> i``) and how many
    more there are.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numbers; got {_describe(values)}") from exc
    if arr.size and np.isfinite(arr).all() and arr.min() >= 0:  # the common case, cheaply
        return arr
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        flat = np.flatnonzero(bad.ravel())
        first = int(flat[0])
        value = float(arr.ravel()[first])
        more = f" (and {flat.size - 1} more)" if flat.size > 1 else ""
        where = f" at {index_name} {first}" if arr.ndim else ""
        raise ValueError(
            f"{what} must be finite and >= 0; got {value!r}{where}{more}. "
            "Use 0 to exclude a sample (set_weights(where, 0))."
        )
    return arr


def check_weight_total(weights: np.ndarray, *, what: str = "weights") -> float:
    """Return the sum of valid ``weights``, or raise if it overflows to infinity.

    Every weight may be finite while their sum is not (several values near
    1e308); samplers, normalisation and the effective sample size all need a
    finite total, so such a vector is refused where it is made.
    """
    with np.errstate(over="ignore"):
        total = float(np.sum(weights))
    if not np.isfinite(total):
        top = float(np.max(weights)) if np.size(weights) else 0.0
        raise ValueError(
            f"{what} sum to infinity (the largest is {top:.3g}); weights are relative, so "
            "scale them down, e.g. divide by their maximum"
        )
    return total


def check_weights(weights: np.ndarray, *, what: str = "weights") -> None:
    """Raise unless every weight is finite and >= 0 and their sum is finite.

    ``min >= 0`` and a finite sum prove it in two passes without temporaries
    (NaN fails the first, inf the second), which matters at 1e8 rows; only a
    failing vector goes through :func:`check_weight_values` and
    :func:`check_weight_total`, which name the bad row or the overflow.
    """
    with np.errstate(over="ignore"):
        valid = bool(weights.size and weights.min() >= 0 and np.isfinite(np.sum(weights)))
    if not valid:
        check_weight_values(weights, what=what, index_name="row")
        check_weight_total(weights, what=what)


def check_length(values: np.ndarray, expected: int, *, what: str, hint: str = "") -> None:
    """Raise ``ValueError`` unless ``len(values) == expected``."""
    got = len(values)
    if got != expected:
        raise ValueError(f"{what} has length {got}, expected {expected}{hint}")


def check_choice(value: object, allowed: Iterable[object], *, what: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        hint = did_you_mean(str(value), [str(a) for a in allowed])
        raise ValueError(
            f"{what} must be one of {', '.join(map(repr, allowed))}; got {value!r}{hint}"
        )


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_weight_counts(weights: np.ndarray, *, what: str = "weights") -> np.ndarray:
    """Return valid ``weights`` as int64 repeat counts, or raise if one is not a whole number.

    Used where a weight says how many times a row appears (``repeat_by_weight``).
    """
    whole = np.floor(weights) == weights
    if not whole.all():
        bad = np.flatnonzero(~whole)
        more = f" (and {bad.size - 1} more)" if bad.size > 1 else ""
        raise ValueError(
            f"{what} must be whole numbers to be used as repeat counts; got "
            f"{float(weights[bad[0]])!r} at row {int(bad[0])}{more}. Round them first, "
            "e.g. t.set_weights(None, np.round(t.weights)), or use repeat_by_weight=False"
        )
    total = float(np.sum(weights))
    if total >= 2.0**40:
        raise ValueError(
            f"{what} as repeat counts would yield {total:.3g} indices per epoch; scale "
            "them down or use repeat_by_weight=False with num_samples="
        )
    return weights.astype(np.int64)
