"""Matplotlib views of a table's class balance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.axes

    from .table import WeightTable

__all__ = ["plot_balance"]


def plot_balance(
    table: WeightTable,
    *,
    ax: matplotlib.axes.Axes | None = None,
    compare_to: int | None = None,
) -> matplotlib.axes.Axes:
    """Draw grouped bars per class: raw share, effective (weighted) share.

    Optionally also the effective share at an earlier revision.

    Parameters
    ----------
    table : WeightTable
        The table to describe.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    compare_to : int, optional
        A revision whose effective share is drawn beside the current one.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.6 * len(table.classes) + 2), 3.2))
    balance = table.class_balance()
    series = [("raw share", balance["share"].to_numpy(), "#9aa5b1")]
    if compare_to is not None:
        series.append(
            (f"effective, revision {compare_to}", table.effective_share_at(compare_to), "#f0b37e")
        )
    series.append(
        (f"effective, revision {table.revision}", balance["effective_share"].to_numpy(), "#2f6fb5")
    )
    x = np.arange(len(table.classes))
    width = 0.8 / len(series)
    for i, (name, values, color) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=color)
    ax.set_xticks(x, [str(c) for c in table.classes])
    ax.set_xlabel(str(table.label))
    ax.set_ylabel("share of samples / of weight")
    ax.set_title(f"class balance of {table.name!r}")
    ax.legend(frameon=False, fontsize="small")
    ax.margins(x=0.02)
    return ax
