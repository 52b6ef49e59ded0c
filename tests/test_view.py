"""The view module on its own, without a widget: filter masks, sort orders and pages,
the selection, per-class aggregates, column summaries and the conditions a brush or
a click adds to the filter (issue 11 points 8 and 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightwidget as ww
from weightwidget import query, view
from weightwidget.errors import FilterError
from weightwidget.view import TableView

from .conftest import run_json


@pytest.fixture
def big(tmp_path):
    """5,000 rows with ties, NaN, text with a missing value, bools and a label."""
    rng = np.random.default_rng(3)
    n = 5000
    loss = np.round(rng.gamma(2.0, 1.0, n), 1)
    loss[rng.integers(0, n, 40)] = np.nan
    words = np.array(["cat", "dog", 'say "and" then', "bird", "fish"], dtype=object)
    caption = words[rng.integers(0, 5, n)]
    caption[7] = None
    return ww.WeightTable.from_arrays(
        labels=rng.choice(4, n, p=[0.55, 0.25, 0.15, 0.05]),
        name="v",
        store=str(tmp_path / "s"),
        loss=loss,
        score=rng.integers(0, 7, n),
        caption=caption,
        flagged=rng.random(n) < 0.2,
    )


# --------------------------------------------------------------------------- masks + sorts
def test_masks_are_cached_per_filter_and_version(big):
    a = view.filter_mask(big, "label == 1 and loss > 2")
    assert a is view.filter_mask(big, "label == 1 and loss > 2")
    assert not a.flags.writeable
    w = view.filter_mask(big, "weight > 0.5")
    big.set_weights([0, 1, 2], 0.25)
    # a filter that reads no weights survives a weight edit; one that does is recomputed
    assert view.filter_mask(big, "label == 1 and loss > 2") is a
    w2 = view.filter_mask(big, "weight > 0.5")
    assert w2 is not w and w2[:3].tolist() == [False, False, False]
    big.set_columns({"run_loss": np.arange(len(big), dtype=float)})
    assert view.filter_mask(big, "run_loss < 10").sum() == 10
    big.set_columns({"run_loss": np.arange(len(big), dtype=float) + 5})  # replaced
    assert view.filter_mask(big, "run_loss < 10").sum() == 5
    with pytest.raises(FilterError, match="position"):
        view.filter_mask(big, "lable == 1")


def test_table_methods_delegate_to_the_view(big):
    assert big.mask("label == 2") is view.filter_mask(big, "label == 2")
    assert big.sort_order("loss") is view.sort_order(big, "loss")
    assert big.count("label == 2") == int(view.filter_mask(big, "label == 2").sum())
    assert not hasattr(big, "_mask_cache") and not hasattr(big, "_sort_cache")


@pytest.mark.parametrize("by", ["loss", "score", "caption", "flagged", "label", "weight"])
@pytest.mark.parametrize("ascending", [True, False])
def test_sort_order_is_stable_ties_by_row_missing_last(big, by, ascending):
    order = view.sort_order(big, by, ascending=ascending)
    values = pd.Series(big.df[by].to_numpy() if by != "weight" else big.weights)
    frame = pd.DataFrame({"v": values, "rid": np.arange(len(big))})
    expected = frame.sort_values(
        ["v", "rid"], ascending=[ascending, True], na_position="last", kind="stable"
    )["rid"].to_numpy()
    if by == "caption":  # missing text last, the rest by text
        assert pd.isna(values.iloc[order[-1]])
    assert order.tolist() == expected.tolist()
    assert order is view.sort_order(big, by, ascending=ascending)


def test_weight_sort_follows_the_revision(big):
    first = view.sort_order(big, "weight", ascending=False)
    big.set_weights([4999], 7.0)
    assert view.sort_order(big, "weight", ascending=False)[0] == 4999
    assert first[0] == 0


def test_top_order_matches_the_full_sort_or_declines():
    rng = np.random.default_rng(0)
    vals = rng.random(10_000)
    for asc in (True, False):
        top = view.top_order(vals, None, asc, 10)
        assert top.tolist() == query.sort_order(vals, ascending=asc)[:10].tolist()
    ints = rng.integers(-(2**62), 2**62, 10_000)
    top = view.top_order(ints, None, False, 10)
    assert top.tolist() == query.sort_order(ints, ascending=False)[:10].tolist()
    rows = np.flatnonzero(vals > 0.5)
    top = view.top_order(vals, rows, True, 10)
    order = query.sort_order(vals)
    assert top.tolist() == order[vals[order] > 0.5][:10].tolist()
    assert view.top_order(np.arange(10.0), None, True, 5) is None  # too few rows
    assert view.top_order(np.zeros(10_000), None, True, 5) is None  # all ties
    assert view.top_order(np.array(["a"] * 10_000), None, True, 5) is None  # not numbers


# --------------------------------------------------------------------------- pages
@pytest.mark.parametrize("filt", ["", "label != 0", "caption contains 'a'", "weight > 0"])
@pytest.mark.parametrize(
    ("by", "asc"),
    [
        (None, True),
        ("loss", True),
        ("loss", False),
        ("caption", True),
        ("row", False),
        ("score", False),
    ],
)
def test_pages_are_the_filtered_then_sorted_rows(big, filt, by, asc):
    v = TableView(big, filter=filt, sort_by=by, ascending=asc)
    mask = np.ones(len(big), bool) if not filt else big.mask(filt)
    order = np.arange(len(big)) if by is None else big.sort_order(by, ascending=asc)
    expected = order[mask[order]]
    assert v.matched == expected.size
    assert v.ids(0, 100).tolist() == expected[:100].tolist()  # from the partial sort
    assert v.ids(1200, 1300).tolist() == expected[1200:1300].tolist()  # waits for the full
    assert v.ids(v.matched - 10, v.matched + 50).tolist() == expected[-10:].tolist()
    assert v.ids(v.matched + 5, v.matched + 9).size == 0


def test_a_view_follows_edits_and_new_columns(big):
    v = TableView(big, filter="weight >= 1", sort_by="weight", ascending=False)
    assert v.matched == len(big)
    big.set_weights([10, 20], 0.5)
    big.set_weights([30], 9.0)
    assert v.matched == len(big) - 2 and v.ids(0, 1).tolist() == [30]
    big.set_columns({"m": np.arange(len(big), dtype=float)[::-1].copy()})
    v.set_sort("m", True)
    assert v.ids(0, 3).tolist() == [4999, 4998, 4997]


def test_set_filter_and_sort_refuse_bad_input(big):
    v = TableView(big)
    with pytest.raises(FilterError):
        v.set_filter("label ==")
    with pytest.raises(FilterError):
        TableView(big, filter="nope > 1")
    with pytest.raises(ValueError, match="sort_by must be one of the sortable columns"):
        v.set_sort("nope")
    assert v.check_sort("") is None and v.filter == ""


# --------------------------------------------------------------------------- selection
def test_the_selection_only_holds_visible_rows(big):
    v = TableView(big)
    v.select([5, 3, 3, 900])
    assert v.selected.tolist() == [3, 5, 900]
    v.set_filter("label == 0")
    keep = [r for r in (3, 5, 900) if big.labels[r] == 0]
    assert v.selected.tolist() == keep and v.selection().tolist() == keep
    hidden = int(np.flatnonzero(big.labels != 0)[0])
    with pytest.raises(ValueError, match=f"selected holds row {hidden}"):
        v.select([hidden])
    with pytest.raises(ValueError, match="row ids run from 0 to 4999"):
        v.select([5000])
    v.set_select_all(True)
    assert v.selection().tolist() == np.flatnonzero(big.labels == 0).tolist()
    v.set_filter("label == 1")  # "all matching" ends with the filter
    assert not v.select_all and v.selection().size == 0


def test_rows_a_weight_filter_hides_after_an_edit_leave_the_selection(big):
    v = TableView(big, filter="weight > 0")
    v.select([1, 2, 3])
    big.set_weights([2], 0.0)
    assert v.selection().tolist() == [1, 3]  # never acts on a hidden row, even before refresh
    v.refresh()
    assert v.selected.tolist() == [1, 3]


# --------------------------------------------------------------------------- aggregates
def test_class_aggregates(big):
    counts, _, sums = view.class_aggregates(big)
    codes = big.label_codes
    assert counts.tolist() == np.bincount(codes).tolist()
    big.set_weights("label == 1", 0.0)
    counts2, included2, sums2 = view.class_aggregates(big)
    assert included2[1] == 0 and sums2[1] == 0 and counts2.tolist() == counts.tolist()
    old = view.class_aggregates(big, weights=big.weights_at(0))
    assert old[2].tolist() == sums.tolist()
    mask = big.mask("loss > 3")
    assert (
        view.class_aggregates(big, mask=mask)[0].tolist()
        == np.bincount(codes[mask], minlength=len(big.classes)).tolist()
    )


# --------------------------------------------------------------------------- summaries
def test_histogram_counts_the_matched_rows_per_bin(big):
    mask = big.mask("label == 0")
    s = view.column_summary(big, "loss", mask)
    loss = big.column("loss")
    edges = np.asarray(s["edges"])
    assert s["kind"] == "histogram" and np.all(np.diff(edges) > 0)
    assert edges[0] <= np.nanmin(loss) and edges[-1] >= np.nanmax(loss)
    for i in range(len(edges) - 1):
        upper = loss <= edges[i + 1] if i == len(edges) - 2 else loss < edges[i + 1]
        inside = (loss >= edges[i]) & upper
        assert s["counts"][i] == int((inside & mask).sum())
        assert s["totals"][i] == int(inside.sum())
    assert s["missing"] == int((np.isnan(loss) & mask).sum())
    assert s["matched"] == int(mask.sum())
    assert len(edges) - 1 <= view.BINS


def test_integer_columns_get_one_bar_per_value(big):
    s = view.column_summary(big, "score")
    assert s["integer"] and s["edges"] == list(range(0, 8))
    assert s["counts"] == np.bincount(big.column("score")).tolist()


def test_value_summaries_of_text_bool_and_label(big):
    mask = big.mask("loss > 2")
    for name in ("caption", "flagged", "label"):
        s = view.column_summary(big, name, mask)
        assert s["kind"] == "values"
        for item in s["values"]:
            # each value's condition selects exactly the rows counted for it
            assert big.count(f"({item['filter']}) and loss > 2") == item["count"]
            assert big.count(item["filter"]) == item["total"]
        counts = [item["count"] for item in s["values"]]
        assert counts == sorted(counts, reverse=True)
        assert sum(counts) + s["other"] + s["missing"] == int(mask.sum())
    cap = view.column_summary(big, "caption")
    assert cap["missing"] == 1 and 'say "and" then' in [v["value"] for v in cap["values"]]
    assert [v["value"] for v in view.column_summary(big, "flagged")["values"]] == ["false", "true"]
    assert view.column_summary(big, "row") is None


def test_summaries_follow_the_weights(big):
    v = TableView(big)
    before = v.summaries(["weight"])[0]
    assert before["counts"] == [len(big)]
    big.set_weights([0, 1], 3.0)
    after = v.summaries(["weight"])[0]
    assert sum(after["counts"]) == len(big) and after["edges"][-1] >= 3


def test_large_ranges_do_not_overflow(tmp_path):
    t = ww.WeightTable.from_arrays(
        labels=[0, 1, 0], name="x", store=str(tmp_path / "s"), v=np.array([-1e308, 0, 1e308])
    )
    s = view.column_summary(t, "v")
    assert np.isfinite(s["edges"]).all() and sum(s["counts"]) == 3


# --------------------------------------------------------------------------- conditions
def test_a_brush_adds_a_condition_that_selects_the_brushed_bars(big):
    v = TableView(big, filter="label != 3")
    s = v.summaries(["loss"])[0]
    edges = s["edges"]
    text = v.condition("loss", lo=edges[2] + 0.01, hi=edges[5] - 0.01)
    assert text == f"label != 3 and {edges[2]:g} <= loss < {edges[5]:g}"
    assert big.count(text) == sum(s["counts"][2:5])
    v.set_filter(text)
    again = v.condition("loss", lo=edges[0], hi=edges[1])  # replaces its own condition
    assert again == f"label != 3 and {edges[0]:g} <= loss < {edges[1]:g}"
    v.set_filter(again)
    cleared = v.condition("loss", clear=True)
    assert cleared == "label != 3"
    v.set_filter(cleared)
    last = v.condition("loss", lo=edges[-2], hi=edges[-1] + 5)  # the last bin is closed
    assert last == f"label != 3 and {edges[-2]:g} <= loss <= {edges[-1]:g}"
    assert big.count(last) == s["counts"][-1]


def test_a_click_on_a_value_adds_its_condition(big):
    v = TableView(big, filter="loss > 1 or label == 2")
    text = v.condition("caption", value='say "and" then')
    assert text == '(loss > 1 or label == 2) and caption == "say \\"and\\" then"'
    v.set_filter(text)
    assert v.condition("caption", value="dog").endswith('and caption == "dog"')
    assert v.condition("flagged", value="true").endswith("and flagged == true")
    with pytest.raises(ValueError, match="has no value 'zebra'"):
        v.condition("caption", value="zebra")
    with pytest.raises(ValueError, match="unknown column"):
        v.condition("nope", lo=1, hi=2)


def test_refine_filter_keeps_what_the_user_typed():
    assert view.refine_filter("", None, "a > 1") == "a > 1"
    assert view.refine_filter("x == 'p and q'", None, "a > 1") == "x == 'p and q' and a > 1"
    assert view.refine_filter("b < 2 and a > 1", "a > 1", "a > 3") == "b < 2 and a > 3"
    assert view.refine_filter("b < 2 and (a > 1)", "a > 1", None) == "b < 2 and (a > 1)"
    assert view.refine_filter("a > 1", "a > 1", None) == ""
    assert view.refine_filter("x or y", None, "a > 1") == "(x or y) and a > 1"


# --------------------------------------------------------------------------- purity
def test_view_is_pure_and_starts_no_threads_at_import():
    out = run_json(
        """
        import json, sys, threading
        import weightwidget.view as v
        import weightwidget.widget
        print(json.dumps([threading.active_count(), v._SORTER is None,
                          sorted(m for m in ("traitlets", "anywidget") if m in sys.modules)]))
        """
    )
    assert out[:2] == [1, True]
    out = run_json(
        """
        import json, sys
        import weightwidget.view
        print(json.dumps(sorted(m for m in ("traitlets", "anywidget", "ipywidgets")
                                if m in sys.modules)))
        """
    )
    assert out == []


@given(
    values=st.one_of(
        hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)),
        hnp.arrays(
            np.float64,
            st.integers(1, 300),
            elements=st.sampled_from(
                [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 1.0, 2.5, np.nan, np.inf, -np.inf, 1e-9]
            ),
        ),
        hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(-(10**6), 10**6)),
        hnp.arrays(np.int64, st.integers(1, 300), elements=st.integers(-5, 12)),
    ),
    scale=st.sampled_from([1.0, 0.1, 0.05, 3.7]),
)
def test_bin_codes_agree_with_searchsorted(values, scale):
    values = values * scale if values.dtype.kind == "f" else values
    edges, integer = view.histogram_edges(values)
    nb = len(edges) - 1
    expected = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, nb - 1)
    if values.dtype.kind == "f":
        expected[np.isnan(values)] = nb
    got = view.bin_codes(values, edges, integer=integer)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "values",
    [[0.0, 5e-324], [0.0, 1e-300], [1e6, 1e6 + 1e-9], [-1e-13, 1e-13], [3.0, 3.0 + 4e-15]],
)
def test_histogram_edges_of_a_very_narrow_range_stay_increasing(values):
    values = np.array(values)
    edges, integer = view.histogram_edges(values)
    assert not integer and edges.size >= 2 and np.all(np.diff(edges) > 0)
    assert edges[0] <= values.min() and edges[-1] >= values.max()
    codes = view.bin_codes(values, edges)
    assert codes[0] == 0 and codes[-1] == edges.size - 2  # lowest and highest bins


def test_label_summary_counts_unlabelled_rows_as_missing(tmp_path):
    labels = np.r_[np.full(5, np.nan), np.arange(15) % 3].astype(float)
    t = ww.WeightTable.from_arrays(labels=labels, name="u", store=str(tmp_path / "s"))
    s = view.column_summary(t, "label")
    assert s["missing"] == 5 and s["matched"] == 20
    assert [(v["value"], v["count"]) for v in s["values"]] == [("0", 5), ("1", 5), ("2", 5)]
    masked = view.column_summary(t, "label", t.mask("label is missing or label == 1"))
    assert masked["missing"] == 5 and [v["value"] for v in masked["values"]] == ["1"]
