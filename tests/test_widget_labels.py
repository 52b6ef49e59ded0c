"""Label editing in the widget (issue 13 point 2, widget part), without a browser: the
"label", "bulk_label" and "preview" requests, and what follows a label edit (classes,
column summaries, the status band's unlabelled count, undo). Every reply is checked
against the contract; every edit against the store reopened from disk."""

from __future__ import annotations

import re

import numpy as np
import pytest

import weightwidget as ww
from weightwidget import _protocol as protocol
from weightwidget._serialize import PREVIEW_SIZE, thumbnails
from weightwidget.view import class_text, column_summary, label_value
from weightwidget.widget import WeightWidget

from .test_widget import Recorder


@pytest.fixture
def w(table):
    widget = WeightWidget(table)
    yield widget
    widget.close()


@pytest.fixture
def rec(w):
    return Recorder(w)


def on_disk(table: ww.WeightTable) -> ww.WeightTable:
    return ww.WeightTable.open(table.store_url)


def counts(table: ww.WeightTable) -> dict[str, int]:
    codes = table.label_codes
    per_class = np.bincount(codes[codes >= 0], minlength=len(table.classes))
    return {class_text(c): int(n) for c, n in zip(table.classes, per_class, strict=True)}


# --------------------------------------------------------------------------- one row
def test_a_label_edit_is_one_named_revision_on_disk(rec, table):
    before = table.labels.copy()
    old = int(before[17])
    new = (old + 1) % 5
    c, _ = rec.ask("label", row=17, value=str(new))
    assert c["ok"] and c["revision"] == 1 and c["rows"] == 1
    assert c["message"] == f"r1: set label of row 17 to {new}"
    assert rec.w.revision == 1
    assert rec.w.history[-1]["message"] == f"set label of row 17 to {new}"
    assert rec.w.history[-1]["rows_changed"] == 1
    disk = on_disk(table)
    assert disk.revision == 1 and disk.labels[17] == new
    changed = np.flatnonzero(disk.labels != before)
    assert changed.tolist() == [17]
    np.testing.assert_array_equal(disk.weights, np.ones(1000))  # weights untouched


def test_the_class_panel_summaries_and_status_band_follow_a_label_edit(rec, table):
    w = rec.w
    w.filter = "label == 4"
    n4 = w.matched
    first = int(table.select("label == 4")[0])
    shown = {c["value"]: c["count"] for c in w.classes}
    summary = rec.ask("summaries", columns=["label"])[0]["summaries"][0]
    assert summary["values"][0]["count"] == n4
    view = w.view

    rec.ask("label", row=first, value="0")
    # the class histogram (the classes trait) and the counts
    after = {c["value"]: c["count"] for c in w.classes}
    assert after["4"] == shown["4"] - 1 and after["0"] == shown["0"] + 1
    assert after == counts(table)
    # the row left the filter: the page is asked to refetch, the count follows
    assert w.matched == n4 - 1 and w.view > view
    # the label column's top values over the matched rows follow
    summary = rec.ask("summaries", columns=["label"])[0]["summaries"][0]
    assert summary["values"] == [
        {"value": "4", "count": n4 - 1, "total": n4 - 1, "filter": "label == 4"}
    ]
    # the status band: one row unlabelled, with the filter that finds it
    w.filter = ""
    rec.ask("label", row=first, value=None)
    assert w.summary["unlabelled"] == 1 == table.n_unlabelled
    assert w.summary["unlabelled_filter"] == "label is missing"
    assert table.select(w.summary["unlabelled_filter"]).tolist() == [first]
    assert sum(c["count"] for c in w.classes) == 999
    summary = rec.ask("summaries", columns=["label"])[0]["summaries"][0]
    assert summary["missing"] == 1 and summary["matched"] == 1000
    assert sum(v["count"] for v in summary["values"]) + summary["other"] == 999


def test_unlabelled_is_a_choice_and_a_filter(rec, table):
    c, _ = rec.ask("label", row=3, value=None)
    assert c["message"] == "r1: set label of row 3 to missing (unlabelled)"
    assert table.label_codes[3] == -1
    disk = on_disk(table)
    assert disk.n_unlabelled == 1 and disk.label_codes[3] == -1
    rec.w.filter = "label is missing"
    assert rec.w.matched == 1
    # labelling it again: the row leaves the filter
    c, _ = rec.ask("label", row=3, value="2")
    assert rec.w.matched == 0 and on_disk(table).labels[3] == 2


def test_an_edit_that_changes_nothing_commits_nothing(rec, table):
    same = str(int(table.labels[5]))
    c, _ = rec.ask("label", row=5, value=same)
    assert c["rows"] == 0 and c["revision"] == 0
    assert c["message"] == f"row 5 is already labelled {same}; nothing changed"
    assert on_disk(table).revision == 0


def test_new_classes_only_when_asked(rec, table):
    c, _ = rec.ask("label", row=0, value="7")
    assert re.search(r"'7' is not a class of 'label' \(classes: 0, 1, 2, 3, 4\)", c["error"])
    assert table.revision == 0 and list(table.classes) == [0, 1, 2, 3, 4]
    c, _ = rec.ask("label", row=0, value="7", new=True)
    assert c["message"] == "r1: set label of row 0 to new class 7"
    assert list(on_disk(table).classes) == [0, 1, 2, 3, 4, 7]
    assert [x["value"] for x in rec.w.classes][-1] == "7"
    # an existing class sent as new is just that class
    c, _ = rec.ask("label", row=1, value="3", new=True)
    assert c["message"] == "r2: set label of row 1 to 3" and len(table.classes) == 6


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"row": 0, "value": 3}, "value must be text; got 3"),
        ({"row": 0, "value": ["3"]}, "value must be text"),
        ({"row": 0, "value": "x" * 5000}, "value must be at most 1,000 characters"),
        ({"row": 0, "value": "3", "new": 1}, "new must be true or false"),
        ({"row": 0}, "value is missing"),
        ({"row": 1000, "value": "3"}, r"row must be in \[0, 999\]"),
        ({"row": -1, "value": "3"}, r"row must be in \[0, 999\]"),
        ({"row": 0, "value": "3", "where": "x"}, "unknown field 'where'"),
        ({"row": 0, "value": "cat"}, "'cat' is not a class of 'label'"),
        ({"row": 0, "value": "cat", "new": True}, "holds whole numbers; 'cat' is not one"),
        ({"row": 0, "value": "2.5", "new": True}, "holds whole numbers; '2.5' is not one"),
        ({"row": 0, "value": "9" * 30, "new": True}, "beyond 64 bits"),
        ({"row": 0, "value": "", "new": True}, "holds whole numbers; '' is not one"),
    ],
)
def test_bad_label_requests_are_refused_cleanly(rec, table, payload, match):
    c, _ = rec.ask("label", **payload)
    assert re.search(match, c["error"]), c["error"]
    assert "internal error" not in c["error"]
    assert table.revision == 0 and on_disk(table).revision == 0


def test_a_row_the_filter_hides_is_refused(rec, table):
    rec.w.filter = "label == 1"
    hidden = int(table.select("label == 2")[0])
    c, _ = rec.ask("label", row=hidden, value="1")
    assert c["error"] == (
        f"row {hidden} is hidden by the filter 'label == 1'; label only rows the filter shows"
    )
    assert table.revision == 0
    shown = int(table.select("label == 1")[0])
    c, _ = rec.ask("label", row=shown, value="2")
    assert c["revision"] == 1


def test_text_labels_markup_and_new_text_classes(store_path):
    labels = np.array(["cat", "dog", "<b>x</b>", "cat"], dtype=object)
    t = ww.WeightTable.from_arrays(labels=labels, name="txt", store=store_path)
    w = WeightWidget(t)
    rec = Recorder(w)
    assert [c["value"] for c in w.classes] == ["<b>x</b>", "cat", "dog"]
    c, _ = rec.ask("label", row=0, value="<b>x</b>")
    assert c["message"] == "r1: set label of row 0 to '<b>x</b>'"
    c, _ = rec.ask("label", row=1, value="bird")
    assert "'bird' is not a class of 'label'" in c["error"]
    c, _ = rec.ask("label", row=1, value="bird", new=True)
    assert c["message"] == "r2: set label of row 1 to new class 'bird'"
    c, _ = rec.ask("label", row=2, value="  ", new=True)
    assert c["error"] == "a new class needs a name; got an empty text"
    disk = on_disk(t)
    assert disk.labels.tolist() == ["<b>x</b>", "bird", "<b>x</b>", "cat"]
    w.close()


def test_float_and_bool_label_columns(tmp_path):
    t = ww.WeightTable.from_arrays(
        labels=np.array([0.5, 1.5, 0.5]), name="f", store=str(tmp_path / "f")
    )
    assert label_value(t, "1.5") == (1.5, 1)
    assert label_value(t, "2.25", new=True) == (2.25, 2)
    assert label_value(t, "1.50", new=True) == (1.5, 1)  # another spelling of a class
    with pytest.raises(ValueError, match="holds numbers; 'nan' is not a finite number"):
        label_value(t, "nan", new=True)
    b = ww.WeightTable.from_arrays(
        labels=np.array([True, False]), name="b", store=str(tmp_path / "b")
    )
    w = WeightWidget(b)
    rec = Recorder(w)
    assert [c["value"] for c in w.classes] == ["False", "True"]
    c, _ = rec.ask("label", row=0, value="False")
    assert c["message"] == "r1: set label of row 0 to False"
    assert on_disk(b).labels.tolist() == [False, False]
    w.close()


def test_label_value_maps_page_text_back_to_classes(table):
    assert label_value(table, None) == (None, -1)
    assert label_value(table, "3") == (3, 3)
    assert isinstance(label_value(table, "3")[0], int)  # a plain scalar for set_labels
    assert label_value(table, "12", new=True) == (12, 5)
    assert label_value(table, "+2", new=True) == (2, 2)
    with pytest.raises(ValueError, match=r"pick one of them, or add it as a new class"):
        label_value(table, "12")


# --------------------------------------------------------------------------- bulk
def test_bulk_label_on_the_visible_selection_counts_the_rows_changed(rec, table):
    w = rec.w
    ones = table.select("label == 1")[:4].tolist()
    twos = table.select("label == 2")[:2].tolist()
    w.selected = sorted(ones + twos)
    w.filter = "label == 1 or label == 2"
    c, _ = rec.ask("bulk_label", target="selection", value="2")
    # six rows selected, two already labelled 2: one revision, four rows changed
    assert c["message"] == "r1: set label to 2 for 6 rows selected (4 changed)"
    assert c["rows"] == 4 and w.history[-1]["rows_changed"] == 4
    disk = on_disk(table)
    assert disk.revision == 1 and (disk.labels[ones + twos] == 2).all()
    assert int((disk.labels != table.labels_at(0)).sum()) == 4
    # hidden selected rows never change: narrow the filter, the selection follows
    w.selected = sorted(ones + twos)
    w.filter = f"row == {ones[0]}"
    assert w.selected == [ones[0]]
    c, _ = rec.ask("bulk_label", target="selection", value="0")
    assert c["message"] == "r2: set label to 0 for 1 row selected"
    disk = on_disk(table)
    assert disk.labels[ones[0]] == 0 and (disk.labels[ones[1:] + twos] == 2).all()


def test_bulk_label_on_every_matching_row(rec, table):
    w = rec.w
    text = "label == 3 and loss > 2"
    ids = table.select(text)
    w.filter = text
    c, _ = rec.ask("bulk_label", target="matched", value="4")
    assert c["message"] == f"r1: set label to 4 for {ids.size} rows matching `{text}`"
    assert c["rows"] == ids.size
    disk = on_disk(table)
    np.testing.assert_array_equal(np.flatnonzero(disk.labels != table.labels_at(0)), ids)
    assert (disk.labels[ids] == 4).all()
    assert w.matched == 0  # the filter now matches nothing
    c, _ = rec.ask("bulk_label", target="matched", value="4")
    assert c["error"] == f"no rows match the filter '{text}'; nothing to label"
    # again on rows that already have it: nothing committed
    w.filter = "label == 4"
    c, _ = rec.ask("bulk_label", target="matched", value="4")
    assert c["rows"] == 0 and "already labelled 4; nothing changed" in c["message"]
    assert table.revision == 1
    # every row unlabelled, then undone
    w.filter = ""
    c, _ = rec.ask("bulk_label", target="matched", value=None)
    assert c["message"] == "r2: set label to missing (unlabelled) for all 1,000 rows"
    assert w.summary["unlabelled"] == 1000 and w.classes[0]["count"] == 0


def test_bulk_label_refusals(rec, table):
    c, _ = rec.ask("bulk_label", target="selection", value="1")
    assert c["error"] == "nothing is selected; select rows or apply to all matching rows"
    c, _ = rec.ask("bulk_label", target="everything", value="1")
    assert "target must be one of ['selection', 'matched']" in c["error"]
    rec.w.selected = [1, 2]
    c, _ = rec.ask("bulk_label", target="selection", value="bird")
    assert "'bird' is not a class" in c["error"]
    c, _ = rec.ask("bulk_label", target="selection", value=1.0)
    assert "value must be text" in c["error"]
    assert table.revision == 0


# --------------------------------------------------------------------------- undo
def test_undo_and_redo_of_a_label_edit(rec, table):
    old = int(table.labels[9])
    rec.ask("label", row=9, value=str((old + 2) % 5))
    c, _ = rec.ask("undo")
    assert c["message"] == "r2: undo" and c["rows"] == 1
    assert table.labels[9] == old and on_disk(table).labels[9] == old
    assert {x["value"]: x["count"] for x in rec.w.classes} == counts(table)
    c, _ = rec.ask("redo")
    assert c["revision"] == 3 and on_disk(table).labels[9] == (old + 2) % 5
    c, _ = rec.ask("revert", revision=0)
    assert on_disk(table).labels[9] == old


# --------------------------------------------------------------------------- preview
def test_preview_sends_the_focused_rows_image_larger(tmp_path):
    rng = np.random.default_rng(1)
    small = rng.random((20, 8, 8)) * 16  # digits-like
    big = rng.integers(0, 256, (20, 600, 400, 3), dtype=np.uint8)
    labels = np.arange(20) % 3
    t = ww.WeightTable.from_arrays(
        labels=labels, name="img", store=str(tmp_path / "s"), digit=small, photo=big
    )
    w = WeightWidget(t)
    rec = Recorder(w)
    c, bufs = rec.ask("preview", row=7, column="digit")
    assert (c["height"], c["width"], c["channels"], c["label"]) == (8, 8, 1, "1")
    pixels = np.frombuffer(bufs[0], np.uint8).reshape(8, 8, 1)
    np.testing.assert_array_equal(pixels, thumbnails(small, np.array([7]), PREVIEW_SIZE)[0])
    assert pixels.max() == 255  # scaled 0..16 -> 0..255, as the thumbnails
    c, bufs = rec.ask("preview", row=3, column="photo")
    assert max(c["height"], c["width"]) <= PREVIEW_SIZE and c["channels"] == 3
    assert (c["height"], c["width"]) == (200, 134)  # a whole stride of 3
    np.testing.assert_array_equal(
        np.frombuffer(bufs[0], np.uint8).reshape(200, 134, 3), big[3, ::3, ::3]
    )
    rec.ask("label", row=7, value=None)
    assert rec.ask("preview", row=7, column="digit")[0]["label"] is None
    c, _ = rec.ask("preview", row=7, column="label")
    assert c["error"] == "column 'label' is not an image column; image columns: ['digit', 'photo']"
    c, _ = rec.ask("preview", row=20, column="digit")
    assert re.search(r"row must be in \[0, 19\]", c["error"])
    w.close()


def test_preview_without_image_columns_says_so(rec):
    c, _ = rec.ask("preview", row=0, column="caption")
    assert c["error"] == "column 'caption' is not an image column; this table has no image column"


def test_preview_replies_are_checked_against_their_buffer():
    content = {**protocol.EXAMPLES["replies"]["preview"]["content"]}
    with pytest.raises(protocol.ProtocolError, match="preview buffer holds 3 bytes; expected 4"):
        protocol.check_reply("preview", content, [b"abc"])
    with pytest.raises(protocol.ProtocolError, match="refers to buffer 0 of 0"):
        protocol.check_reply("preview", content, [])


# --------------------------------------------------------------------------- view
def test_label_summary_counts_unlabelled_rows_as_missing(tmp_path):
    t = ww.WeightTable.from_arrays(
        labels=np.array([0, 1, 2, 1, 0, 1]), name="m", store=str(tmp_path / "s")
    )
    t.set_labels([0, 1], None)
    s = column_summary(t, "label")
    assert s["missing"] == 2 and s["matched"] == 6
    assert [(v["value"], v["count"]) for v in s["values"]] == [("1", 2), ("0", 1), ("2", 1)]
