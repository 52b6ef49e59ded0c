"""plot_balance at many classes (issue 13 point 7): top-k with "other", log scale, horizontal."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import weightwidget as ww

matplotlib.use("Agg")


@pytest.fixture
def sixty(store_path):
    rng = np.random.default_rng(0)
    names = np.array([f"species_{i:02d}_long_name" for i in range(60)], dtype=object)
    counts = np.round(2000 * 0.9 ** np.arange(60)).astype(int) + 1  # a long tail
    labels = np.repeat(names, counts)
    rng.shuffle(labels)
    return ww.WeightTable.from_arrays(labels=labels, store=store_path)


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_sixty_classes_draw_the_top_twenty_and_one_other_bar(sixty):
    ax = sixty.plot_balance()
    labels = [t.get_text() for t in ax.get_yticklabels()]  # horizontal: long names
    assert len(labels) == 21 and labels[-1] == "other (40 classes)"
    assert labels[0] == "species_00_long_name"
    assert len(_bars(ax)) == 21 * 2  # raw and effective share per bar
    raw = [b.get_width() for b in _bars(ax)[:21]]
    cb = sixty.class_balance()
    assert raw[-1] == pytest.approx(cb["share"].iloc[20:].sum())  # "other" holds the rest
    assert sum(raw) == pytest.approx(1.0)
    assert ax.yaxis_inverted()  # the first class on top, like a table
    plt.close("all")


def test_log_scale_and_orientation_options(sixty):
    ax = sixty.plot_balance(log=True, top=None, horizontal=False)
    assert ax.get_yscale() == "log"
    assert len(ax.get_xticklabels()) == 60
    plt.close("all")
    ax = sixty.plot_balance(log=True)
    assert ax.get_xscale() == "log"  # horizontal: the share axis is x
    plt.close("all")
    with pytest.raises(ValueError, match="top must be a positive integer or None; got top=0"):
        sixty.plot_balance(top=0)


def test_few_short_classes_stay_vertical_and_compare_to_adds_a_series(table):
    table.balance("balanced")
    ax = table.plot_balance(compare_to=0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]
    assert len(_bars(ax)) == 5 * 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "raw share",
        "effective, revision 0",
        "effective, revision 1",
    ]
    plt.close("all")


def test_unlabelled_rows_are_left_out_and_counted_in_the_title(store_path):
    t = ww.WeightTable.from_arrays(labels=[0, 1, None, 1, None], store=store_path)
    ax = t.plot_balance()
    assert "(2 unlabelled rows left out)" in ax.get_title()
    assert sum(b.get_height() for b in _bars(ax)[:2]) == pytest.approx(1.0)
    plt.close("all")
