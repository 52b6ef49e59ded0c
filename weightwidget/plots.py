"""Matplotlib views of a table's class balance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.axes

    from .table import WeightTable

__all__ = ["plot_balance"]

#: Class names longer than this, or more bars than ``_MANY_BARS``, turn bars horizontal.
_LONG_NAME = 6
_MANY_BARS = 12


def plot_balance(
    table: WeightTable,
    *,
    ax: matplotlib.axes.Axes | None = None,
    compare_to: int | None = None,
    top: int | None = 20,
    log: bool = False,
    horizontal: bool | None = None,
) -> matplotlib.axes.Axes:
    """Draw grouped bars per class: raw share, effective (weighted) share.

    Optionally also the effective share at an earlier revision. Shares are over
    the labelled rows; unlabelled rows never train and are left out (the title
    says how many).

    Parameters
    ----------
    table : WeightTable
        The table to describe.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    compare_to : int, optional
        A revision whose effective share is drawn beside the current one.
    top : int or None, default=20
        With more classes than this, draw the ``top`` largest (by the larger of
        raw and effective share, in class order) and one ``"other (n classes)"``
        bar holding the rest's summed shares. None draws every class.
    log : bool, default=False
        Log-scaled share axis, so small classes stay visible beside large ones.
    horizontal : bool, optional
        Horizontal bars, with class names on the left (readable when long).
        Default: horizontal when a class name is longer than 6 characters or
        more than 12 bars are drawn.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        ``top`` that is not a positive integer.
    """
    import matplotlib.pyplot as plt

    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive integer or None; got top={top!r}")
    balance = table.class_balance()
    names = [str(c) for c in table.classes]
    series = [("raw share", balance["share"].to_numpy(), "#9aa5b1")]
    if compare_to is not None:
        series.append(
            (f"effective, revision {compare_to}", table.effective_share_at(compare_to), "#f0b37e")
        )
    series.append(
        (f"effective, revision {table.revision}", balance["effective_share"].to_numpy(), "#2f6fb5")
    )
    if top is not None and len(names) > top:
        size = np.max([values for _, values, _ in series], axis=0)
        keep = np.sort(np.argsort(-size, kind="stable")[:top])
        rest = np.setdiff1d(np.arange(len(names)), keep)
        names = [names[i] for i in keep] + [f"other ({len(rest)} classes)"]
        series = [(n, np.append(v[keep], v[rest].sum()), c) for n, v, c in series]
    if horizontal is None:
        horizontal = max((len(n) for n in names), default=0) > _LONG_NAME or len(names) > _MANY_BARS
    if ax is None:
        if horizontal:
            size = (6.4, max(2.4, 0.12 * len(names) * len(series) + 1.2))
        else:
            size = (max(4.0, 0.6 * len(names) + 2), 3.2)
        _, ax = plt.subplots(figsize=size)
    x = np.arange(len(names))
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        offset = x + (i - (len(series) - 1) / 2) * width
        if horizontal:
            ax.barh(offset, values, width, label=name, color=color)
        else:
            ax.bar(offset, values, width, label=name, color=color)
    share_label = "share of labelled samples / of weight"
    if horizontal:
        ax.set_yticks(x, names)
        ax.invert_yaxis()  # the first class on top, like a table
        ax.set_ylabel(str(table.label))
        ax.set_xlabel(share_label)
        if log:
            ax.set_xscale("log")
        ax.margins(y=0.01)
    else:
        ax.set_xticks(x, names)
        ax.set_xlabel(str(table.label))
        ax.set_ylabel(share_label)
        if log:
            ax.set_yscale("log")
        ax.margins(x=0.02)
    unlabelled = int(balance.attrs.get("n_unlabelled", 0))
    ax.set_title(
        f"class balance of {table.name!r}"
        + (f" ({unlabelled:,} unlabelled rows left out)" if unlabelled else "")
    )
    ax.legend(frameon=False, fontsize="small")
    return ax
