"""WeightWidget without a browser: feed the handlers message dicts, check the replies,
the traits and the store (issue 4, points 1-7)."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
import traitlets

import weightwidget as ww
from weightwidget import _protocol as protocol
from weightwidget import widget as widget_mod
from weightwidget._serialize import class_filter, quote_column, thumbnails
from weightwidget.errors import FilterError
from weightwidget.widget import MAX_PAGE, MAX_RANGE, WeightWidget

from .conftest import run_json


class Recorder:
    """Captures what the widget sends (replaces ``widget.send``)."""

    def __init__(self, w: WeightWidget) -> None:
        self.w = w
        self.sent: list[tuple[dict, list]] = []
        self.next_id = 1
        w.send = lambda content, buffers=None: self.sent.append((content, buffers or []))

    def ask(self, kind: str, **payload) -> tuple[dict, list]:
        msg = {"id": self.next_id, "kind": kind, **payload}
        self.next_id += 1
        self.w._on_msg(self.w, msg, [])
        content, buffers = self.sent[-1]
        assert content["id"] == msg["id"]
        protocol.check_reply(kind, content, buffers)  # every reply has its documented shape
        return content, buffers

    def raw(self, content) -> dict:
        self.w._on_msg(self.w, content, [])
        reply, buffers = self.sent[-1]
        kind = content.get("kind") if isinstance(content, dict) else None
        protocol.check_reply(kind if kind in protocol.REPLIES else "ping", reply, buffers)
        return reply


def decode(content: dict, buffers: list) -> dict[str, list]:
    out = {"ids": np.frombuffer(buffers[content["ids"]], "<f8").astype(int).tolist()}
    for col in content["columns"]:
        if col["kind"] == "string":
            out[col["name"]] = col["values"]
        elif col["kind"] == "image":
            shape = (-1, col["height"], col["width"], col["channels"])
            out[col["name"]] = np.frombuffer(buffers[col["buffer"]], np.uint8).reshape(shape)
        else:
            dtype = "<f8" if col["dtype"] == "float64" else np.uint8
            out[col["name"]] = np.frombuffer(buffers[col["buffer"]], dtype).tolist()
    return out


@pytest.fixture
def w(table):
    widget = WeightWidget(table)
    yield widget
    widget.close()


@pytest.fixture
def rec(w):
    return Recorder(w)


# --------------------------------------------------------------------------- 1. table pages
def test_initial_state_is_small_and_describes_the_table(w, table):
    assert w.matched == 1000 and w.n_rows == 1000 and w.revision == 0
    assert w.label == "label"
    assert [c["name"] for c in w.columns] == [
        "row",
        "label",
        "weight",
        "loss",
        "caption",
        "flagged",
    ]
    assert {c["name"]: c["kind"] for c in w.columns}["caption"] == "string"
    state = {k: v for k, v in w.get_state().items() if k not in ("_esm", "_css")}
    state = json.dumps(state, default=str)
    assert len(state) < 10_000, "rows must never travel in the widget state"
    assert "sample 17 " not in state
    assert w.summary == {"rows": 1000, "included": 1000, "weight_sum": 1000.0, "ess": 1000.0}


def test_rows_page_is_binary_and_in_view_order(rec, table):
    content, buffers = rec.ask("rows", start=10, count=5)
    assert content["kind"] == "rows" and content["start"] == 10 and content["count"] == 5
    assert content["total"] == 1000 and content["view"] == rec.w.view
    assert all(isinstance(b, bytes) for b in buffers)
    page = decode(content, buffers)
    assert page["ids"] == [10, 11, 12, 13, 14]
    assert page["weight"] == [1.0] * 5
    assert page["loss"] == pytest.approx(table.column("loss")[10:15].tolist())
    assert page["caption"] == [
        f"sample {i} {'cat' if i % 3 == 0 else 'dog'}" for i in range(10, 15)
    ]
    assert page["flagged"] == table.column("flagged")[10:15].astype(int).tolist()


def test_last_page_is_clipped_and_empty_view_is_fine(rec):
    content, _ = rec.ask("rows", start=995, count=100)
    assert content["count"] == 5
    rec.w.filter = "loss < 0"
    assert rec.w.matched == 0
    content, _ = rec.ask("rows", start=0, count=100)
    assert content["count"] == 0 and content["total"] == 0


def test_long_text_is_truncated_and_markup_stays_text(store_path):
    caption = ["<img src=x onerror=alert(1)>", "x" * 5000]
    t = ww.WeightTable.from_arrays(
        labels=np.array([0, 1]), name="m", store=store_path, caption=caption
    )
    w = WeightWidget(t)
    rec = Recorder(w)
    page = decode(*rec.ask("rows", start=0, count=2))
    assert page["caption"][0] == "<img src=x onerror=alert(1)>"  # the page renders it as text
    assert len(page["caption"][1]) == widget_mod._serialize.MAX_TEXT


def test_image_columns_send_small_thumbnails_of_the_requested_rows_only(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((50, 64, 64)) * 16  # floats 0..16 like sklearn's digits
    t = ww.WeightTable.from_arrays(
        labels=np.arange(50) % 2, name="img", store=str(tmp_path / "s"), image=images
    )
    w = WeightWidget(t)
    assert {c["name"]: c["kind"] for c in w.columns}["image"] == "image"
    content, buffers = Recorder(w).ask("rows", start=3, count=4)
    col = next(c for c in content["columns"] if c["name"] == "image")
    assert (col["height"], col["width"], col["channels"]) == (32, 32, 1)
    thumbs = decode(content, buffers)["image"]
    assert thumbs.shape == (4, 32, 32, 1) and thumbs.min() == 0 and thumbs.max() == 255
    assert sum(len(b) for b in buffers) < 6000


def test_thumbnails_keep_rgb_and_uint8():
    rgba = np.full((3, 8, 8, 4), 7, dtype=np.uint8)
    out = thumbnails(rgba, np.array([0, 2]))
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.uint8 and (out == 7).all()
    with pytest.raises(ValueError, match="image column must have shape"):
        thumbnails(np.zeros((2, 3, 3, 3, 3)), np.array([0]))


# --------------------------------------------------------------------------- 2. sort + filter
def test_filter_from_python_updates_matched_and_view(w, table):
    view = w.view
    w.filter = "label == 3 and loss > 2"
    assert w.matched == table.count("label == 3 and loss > 2")
    assert w.view > view
    page = decode(*Recorder(w).ask("rows", start=0, count=MAX_PAGE))
    assert page["ids"] == table.select("label == 3 and loss > 2").tolist()[:MAX_PAGE]


def test_invalid_filter_from_python_raises_with_position(w):
    w.filter = "label == 1"
    with pytest.raises(FilterError, match="at position 0") as e:
        w.filter = "lable == 1"
    assert e.value.position == 0
    assert w.filter == "label == 1"
    with pytest.raises(FilterError):
        w.filter = "__import__('os')"


def test_invalid_filter_from_page_is_shown_and_last_good_kept(w, monkeypatch):
    resent = []
    monkeypatch.setattr(w, "send_state", lambda key=None: resent.append(key))
    w.set_state({"filter": "label == 2"})
    assert w.filter == "label == 2" and w.filter_error is None
    matched = w.matched
    w.set_state({"filter": "label == 2 and lable > 1"})
    assert w.filter == "label == 2" and w.matched == matched
    assert w.filter_error == {
        "text": "label == 2 and lable > 1",
        "message": w.filter_error["message"],
        "position": 15,
    }
    assert "lable" in w.filter_error["message"] and "label" in w.filter_error["message"]
    assert resent[-1] == ["filter"]  # the page's model gets the kept filter back
    w.set_state({"filter": ""})
    assert w.filter_error is None and w.matched == 1000


def test_sort_from_python_and_page(w, table):
    rec = Recorder(w)
    w.sort_by = "loss"
    page = decode(*rec.ask("rows", start=0, count=50))
    assert page["ids"] == table.sort_order("loss")[:50].tolist()
    w.set_state({"sort_ascending": False})
    page = decode(*rec.ask("rows", start=0, count=50))
    assert page["ids"] == table.sort_order("loss", ascending=False)[:50].tolist()
    w.sort_by = ""  # "" means off, like None
    assert w.sort_by is None
    assert decode(*rec.ask("rows", start=0, count=3))["ids"] == [0, 1, 2]


def test_sort_by_weight_row_and_text_columns(w, table):
    rec = Recorder(w)
    table.set_weights([7, 9], 5.0)
    w.sort_by, w.sort_ascending = "weight", False
    assert decode(*rec.ask("rows", start=0, count=2))["ids"] == [7, 9]
    w.sort_by = "row"
    assert decode(*rec.ask("rows", start=0, count=2))["ids"] == [999, 998]
    w.sort_by, w.sort_ascending = "caption", True
    assert (
        decode(*rec.ask("rows", start=0, count=5))["ids"]
        == table.sort_order("caption")[:5].tolist()
    )


def test_bad_sort_column_raises_from_python_and_is_refused_from_page(w, monkeypatch):
    with pytest.raises(traitlets.TraitError, match="sort_by must be one of the sortable columns"):
        w.sort_by = "nope"
    monkeypatch.setattr(w, "send_state", lambda key=None: None)
    w.set_state({"sort_by": "nope"})
    assert w.sort_by is None and "sort_by" in w.error


def test_partial_sort_matches_full_sort_with_filter_ties_and_nan(tmp_path):
    rng = np.random.default_rng(1)
    n = 20_000
    loss = np.round(rng.random(n), 2)  # many ties
    loss[rng.integers(0, n, 500)] = np.nan
    t = ww.WeightTable.from_arrays(
        labels=rng.integers(0, 3, n), name="p", store=str(tmp_path / "s"), loss=loss
    )
    w = WeightWidget(t)
    rec = Recorder(w)
    for filt in ("", "label != 1"):
        for asc in (True, False):
            w.filter, w.sort_by, w.sort_ascending = filt, "loss", asc
            full = t.sort_order("loss", ascending=asc)
            if filt:
                full = full[t.mask(filt)[full]]
            head = decode(*rec.ask("rows", start=0, count=MAX_PAGE))["ids"]
            assert head == full[:MAX_PAGE].tolist()
            # further down than the partial sort: waits for the full one
            tail = decode(*rec.ask("rows", start=w.matched - 100, count=100))["ids"]
            assert tail == full[-100:].tolist()
            w.sort_by = None


# --------------------------------------------------------------------------- 3. edits
def test_edit_one_cell_is_one_named_revision(rec, table, store_path):
    content, _ = rec.ask("edit", row=5, value=0.25)
    assert content == {
        "id": content["id"],
        "ok": True,
        "revision": 1,
        "rows": 1,
        "message": "r1: set weight of row 5 to 0.25",
    }
    assert table.weights[5] == 0.25 and rec.w.revision == 1
    reopened = ww.WeightTable.open(store_path)
    assert reopened.weights[5] == 0.25
    assert reopened.history()["message"].iloc[-1] == "set weight of row 5 to 0.25"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"row": 5, "value": -1}, ">= 0"),
        ({"row": 5, "value": float("nan")}, "finite|nan"),
        ({"row": 5, "value": "2"}, "value must be a number"),
        ({"row": 5, "value": True}, "value must be a number"),
        ({"row": 1000, "value": 1}, r"row must be in \[0, 999\]"),
        ({"row": -1, "value": 1}, "row must be in"),
        ({"row": "5", "value": 1}, "row must be an integer"),
        ({"value": 1}, "row is missing"),
    ],
)
def test_bad_edits_are_refused_with_a_reason(rec, table, payload, match):
    content, _ = rec.ask("edit", **payload)
    assert set(content) == {"id", "error"}
    assert pytest.importorskip("re").search(match, content["error"]), content["error"]
    assert table.revision == 0


def test_bulk_actions_on_selection_and_on_matched(rec, table):
    w = rec.w
    w.selected = [3, 1, 2, 2]
    assert w.selected == [1, 2, 3]
    c, _ = rec.ask("bulk", action="set", target="selection", value=2)
    assert c["message"] == "r1: set weight to 2 for 3 rows selected" and c["rows"] == 3
    assert table.weights[1:4].tolist() == [2, 2, 2]
    c, _ = rec.ask("bulk", action="scale", target="selection", value=1.5)
    assert table.weights[1:4].tolist() == [3, 3, 3]
    c, _ = rec.ask("bulk", action="exclude", target="selection")
    assert (
        table.weights[1:4].tolist() == [0, 0, 0] and c["message"] == "r3: exclude 3 rows selected"
    )
    c, _ = rec.ask("bulk", action="include", target="selection")
    assert table.weights[1:4].tolist() == [1, 1, 1]

    w.filter = "label == 4"
    n4 = table.count("label == 4")
    c, _ = rec.ask("bulk", action="exclude", target="matched")
    assert c["message"] == f"r5: exclude {n4} rows matching `label == 4`" and c["rows"] == n4
    assert (table.weights[table.labels == 4] == 0).all()
    assert (table.weights[table.labels != 4] == 1).all()

    w.filter = ""
    rec.ask("bulk", action="include", target="matched")
    c, _ = rec.ask("bulk", action="balance", target="matched")
    assert c["message"].startswith("r7: rebalance classes (inverse frequency) over all 1,000 rows")
    bal = table.class_balance()
    assert bal["effective_share"].to_numpy() == pytest.approx(np.full(len(bal), 1 / len(bal)))


def test_select_all_matching_then_bulk(rec, table):
    w = rec.w
    w.filter = "label == 2"
    w.set_state({"select_all": True})
    assert w.selection().tolist() == table.select("label == 2").tolist()
    c, _ = rec.ask("bulk", action="set", target="selection", value=3)
    assert c["message"].endswith("matching `label == 2`")
    assert (table.weights[table.labels == 2] == 3).all()
    w.filter = "label == 1"
    assert w.select_all is False  # a new filter clears "all matching"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"action": "delete", "target": "matched"}, "action must be one of"),
        ({"action": "set", "target": "everything", "value": 1}, "target must be one of"),
        ({"action": "set", "target": "matched"}, "value must be a number"),
        ({"action": "scale", "target": "matched", "value": -2}, ">= 0"),
        ({"action": "exclude", "target": "selection"}, "nothing is selected"),
    ],
)
def test_bad_bulk_requests(rec, table, payload, match):
    content, _ = rec.ask("bulk", **payload)
    assert "error" in content and pytest.importorskip("re").search(match, content["error"])
    assert table.revision == 0


def test_select_range_in_view_order(rec, table):
    w = rec.w
    w.sort_by, w.sort_ascending = "loss", False
    order = table.sort_order("loss", ascending=False)
    c, _ = rec.ask("select_range", start=7, stop=3, add=False)
    assert c["ok"] and w.selected == sorted(order[3:8].tolist())
    rec.ask("select_range", start=20, stop=20, add=True)
    assert w.selected == sorted([*order[3:8].tolist(), int(order[20])])
    c, _ = rec.ask("select_range", start=0, stop=1000, add=False)
    assert "stop must be in [0, 999]" in c["error"]


def test_select_range_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(widget_mod, "MAX_RANGE", 10)
    t = ww.WeightTable.from_arrays(labels=np.zeros(100, int), name="r", store=str(tmp_path / "s"))
    c, _ = Recorder(WeightWidget(t)).ask("select_range", start=0, stop=50)
    assert "a range selects at most 10 rows" in c["error"]
    assert MAX_RANGE >= 10_000


def test_selected_must_be_row_ids(w, monkeypatch):
    with pytest.raises(traitlets.TraitError, match=r"selected\[1\] must be in \[0, 999\]; got 10"):
        w.selected = [1, 1000]
    monkeypatch.setattr(w, "send_state", lambda key=None: None)
    w.set_state({"selected": [-5]})
    assert w.selected == [] and "selected" in w.error


# --------------------------------------------------------------------------- 4. classes + summary
def test_classes_and_summary_follow_edits(rec, table):
    w = rec.w
    counts = pd.Series(table.labels).value_counts().sort_index()
    assert [c["value"] for c in w.classes] == [str(v) for v in counts.index]
    assert [c["count"] for c in w.classes] == counts.tolist()
    assert [c["filter"] for c in w.classes] == [f"label == {v}" for v in counts.index]
    w.filter = "label == 0"
    rec.ask("bulk", action="exclude", target="matched")
    zero = next(c for c in w.classes if c["value"] == "0")
    assert zero["effective_share"] == 0 and zero["share"] == pytest.approx(counts[0] / 1000)
    assert w.summary["included"] == 1000 - counts[0]
    table.set_weights([900], 3.0)
    wts = table.weights
    assert w.summary["ess"] == pytest.approx(wts.sum() ** 2 / (wts**2).sum())


def test_all_weights_zero_does_not_break_the_histogram(rec, table):
    rec.ask("bulk", action="exclude", target="matched")
    assert all(c["effective_share"] == 0 for c in rec.w.classes)
    assert rec.w.summary["ess"] == 0 and rec.w.summary["included"] == 0


def test_class_filter_quotes_values_and_odd_column_names(store_path):
    assert class_filter("label", 3) == "label == 3"
    assert class_filter("label", 'say "hi"\\') == 'label == "say \\"hi\\"\\\\"'
    assert class_filter("my label", "a") == '`my label` == "a"'
    assert quote_column("and") == "`and`"
    t = ww.WeightTable.from_arrays(labels=np.array(['a"b', "c", 'a"b']), name="q", store=store_path)
    w = WeightWidget(t)
    for c in w.classes:
        assert t.count(c["filter"]) == c["count"]


# --------------------------------------------------------------------------- 5. history
def test_history_undo_redo_revert(rec, table):
    w = rec.w
    rec.ask("edit", row=0, value=0)
    rec.ask("edit", row=1, value=0)
    assert [h["message"] for h in w.history][-2:] == [
        "set weight of row 0 to 0",
        "set weight of row 1 to 0",
    ]
    h = w.history[-1]
    assert h["rows_changed"] == 1 and h["parent"] == 1 and h["created"].endswith("+00:00")
    assert w.can_undo and not w.can_redo
    c, _ = rec.ask("undo")
    assert c["ok"] and table.weights[1] == 1 and w.revision == 3
    assert w.can_redo
    c, _ = rec.ask("redo")
    assert table.weights[1] == 0 and w.revision == 4
    c, _ = rec.ask("revert", revision=0)
    assert c["message"] == "r5: revert to r0" and table.weights[:2].tolist() == [1, 1]
    assert len(w.history) == 6
    c, _ = rec.ask("revert", revision=99)
    assert "revision must be in [0, 5]" in c["error"]


def test_undo_with_nothing_to_undo_is_an_error_reply(rec):
    c, _ = rec.ask("undo")
    assert set(c) == {"id", "error"}
    c, _ = rec.ask("redo")
    assert set(c) == {"id", "error"}


# --------------------------------------------------------------------------- 6. source of truth
def test_python_edits_update_a_displayed_widget(w, table):
    view = w.view
    table.set_weights("label == 1", 0.0, message="from python")
    assert w.revision == table.revision == 1
    assert w.view > view  # the page refetches its rows
    assert w.history[-1]["message"] == "from python"


def test_other_process_edits_arrive_with_the_ping(rec, table, store_path):
    run_json(
        f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        print(json.dumps(t.set_weights([3], 9.0, message="from a script")))
        """
    )
    assert rec.w.revision == 0
    c, _ = rec.ask("ping")
    assert c == {"id": c["id"], "ok": True, "revision": 1}
    assert rec.w.revision == 1 and rec.w.history[-1]["message"] == "from a script"
    assert decode(*rec.ask("rows", start=3, count=1))["weight"] == [9.0]


def test_two_widgets_on_one_table_stay_in_step(table):
    a, b = WeightWidget(table), WeightWidget(table)
    Recorder(a).ask("edit", row=2, value=4.0)
    assert b.revision == 1 and b.history[-1]["message"] == "set weight of row 2 to 4"
    a.close()
    table.set_weights([3], 2.0)
    assert a.revision == 1 and b.revision == 2  # a closed widget stops following


def test_kernel_owned_traits_cannot_be_set_from_the_page(w, monkeypatch):
    resent = []
    monkeypatch.setattr(w, "send_state", lambda key=None: resent.append(key))
    w.set_state({"matched": 5, "revision": 9, "columns": [], "filter": "label == 1"})
    # refused as a whole: the page never sends kernel-owned traits, so this is not our page
    assert w.matched == 1000 and w.revision == 0 and w.columns and w.filter == ""
    assert ["columns", "filter", "matched", "revision"] in resent
    assert "the page cannot set 'matched'" in w.error
    w.set_state({"filter": "label == 1"})
    assert w.matched == w._table.count("label == 1") and w.error == ""
    with pytest.raises(traitlets.TraitError, match="read-only"):
        w.matched = 3


def test_constructor_options_and_errors(table):
    ones = table.select("label == 1")[:2].tolist()
    w = WeightWidget(
        table, filter="label == 1", sort_by="loss", sort_ascending=False, selected=ones[::-1]
    )
    assert w.matched == table.count("label == 1") and w.sort_by == "loss" and w.selected == ones
    with pytest.raises(traitlets.TraitError, match="which the filter 'label == 1' hides"):
        WeightWidget(table, filter="label == 1", selected=table.select("label == 0")[:1].tolist())
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['filtr'\]"):
        WeightWidget(table, filtr="x")
    with pytest.raises(TypeError, match="table must be a weightwidget.WeightTable"):
        WeightWidget(pd.DataFrame({"a": [1]}))
    with pytest.raises(FilterError):
        WeightWidget(table, filter="label ==")


def test_bundle_is_built_and_self_contained():
    js = widget_mod._STATIC / "widget.js"
    assert js.exists(), "run `npm run build` first"
    text = js.read_text()
    assert "esm.sh" not in text and "cdn." not in text and "unpkg" not in text
    assert "innerHTML" not in text
    assert (widget_mod._STATIC / "widget.css").exists()


# --------------------------------------------------------------------------- 7. robustness
@pytest.mark.parametrize(
    ("message", "match"),
    [
        ({"id": 1, "kind": "rows", "start": 0, "count": MAX_PAGE + 1}, "count must be in"),
        ({"id": 1, "kind": "rows", "start": 0, "count": 10**12}, "count must be in"),
        ({"id": 1, "kind": "rows", "start": 5000, "count": 10}, "start must be in"),
        ({"id": 1, "kind": "rows", "start": -3, "count": 10}, "start must be in"),
        ({"id": 1, "kind": "rows", "start": 0.5, "count": 10}, "start must be an integer"),
        ({"id": 1, "kind": "rows", "start": None, "count": 10}, "start must be an integer"),
        ({"id": 1, "kind": "rows", "start": [0], "count": 10}, "start must be an integer"),
        ({"id": 1, "kind": "explode"}, "unknown kind 'explode'"),
        ({"id": 1}, "unknown kind None"),
        ({"id": "1", "kind": "ping"}, "id must be an integer"),
        ({"kind": "ping"}, "id must be an integer"),
    ],
)
def test_malformed_messages_get_error_replies(rec, message, match):
    reply = rec.raw(message)
    assert set(reply) == {"id", "error"} and match in reply["error"]
    # and the widget keeps working
    content, _ = rec.ask("rows", start=0, count=2)
    assert content["count"] == 2


@pytest.mark.parametrize("content", [None, "rows", 3, ["rows"]])
def test_non_object_messages_get_error_replies(rec, content):
    reply = rec.raw(content)
    assert reply["id"] is None and "a request must be an object" in reply["error"]


def test_a_handler_bug_is_logged_and_answered(rec, monkeypatch, caplog):
    def boom(msg):
        raise RuntimeError("kaboom")

    monkeypatch.setitem(rec.w._handlers, "ping", boom)
    with caplog.at_level(logging.ERROR, logger="weightwidget.widget"):
        c, _ = rec.ask("ping")
    assert c["error"] == "internal error in 'ping': RuntimeError: kaboom"
    assert "ping request failed" in caplog.text
    assert rec.ask("rows", start=0, count=1)[0]["count"] == 1


def test_slow_requests_are_logged(rec, monkeypatch, caplog):
    monkeypatch.setattr(widget_mod, "SLOW_MS", -1.0)
    with caplog.at_level(logging.INFO, logger="weightwidget.widget"):
        rec.ask("rows", start=0, count=1)
    assert "slow rows request" in caplog.text


def test_new_metric_columns_show_up_and_refresh_masks(w, table):
    view = w.view
    table.set_columns({"run1_loss": np.arange(1000.0)})
    assert "run1_loss" in [c["name"] for c in w.columns] and w.view > view
    w.filter = "run1_loss < 10"
    assert w.matched == 10
    page = decode(*Recorder(w).ask("rows", start=0, count=3))
    assert page["run1_loss"] == [0.0, 1.0, 2.0]
    table.set_columns({"run1_loss": np.arange(1000.0) + 5})  # replaced: the mask follows
    assert w.matched == 5
    w.sort_by, w.sort_ascending = "run1_loss", False
    assert decode(*Recorder(w).ask("rows", start=0, count=2))["ids"] == [4, 3]


# --------------------------------------------------------------------------- issue 9.7: page input
@pytest.fixture
def resent(w, monkeypatch):
    """Keys the widget sends back to the page (to undo a refused change there)."""
    out: list = []
    monkeypatch.setattr(w, "send_state", lambda key=None: out.append(key))
    return out


PAGE_STATE = ("filter", "sort_by", "sort_ascending", "selected", "select_all")


def page_state(w) -> dict:
    return {k: getattr(w, k) for k in PAGE_STATE}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"selected": [2**63]}, r"selected\[0\] must be in \[0, 999\]"),
        pytest.param(
            {"selected": [10**400]}, r"selected\[0\] must be in \[0, 999\]; got 10+\.", id="huge"
        ),
        ({"selected": [3, -1]}, r"selected\[1\] must be in \[0, 999\]; got -1"),
        ({"selected": [1.5]}, r"selected\[0\] must be an integer; got 1\.5"),
        ({"selected": [True]}, r"selected\[0\] must be an integer; got True"),
        ({"selected": ["3"]}, r"selected\[0\] must be an integer; got '3'"),
        ({"selected": 3}, "selected must be a list; got 3"),
        ({"selected": [[3]]}, r"selected\[0\] must be an integer"),
        ({"filter": 5}, "filter must be text; got 5"),
        ({"filter": None}, "filter must be text; got None"),
        ({"sort_by": 3}, "sort_by must be text; got 3"),
        ({"sort_by": "nope"}, "sort_by must be one of the sortable columns"),
        ({"sort_ascending": "yes"}, "sort_ascending must be true or false; got 'yes'"),
        ({"sort_ascending": 1}, "sort_ascending must be true or false; got 1"),
        ({"select_all": None}, "select_all must be true or false"),
        ({"filter": "label == 1", "selected": [-1]}, r"selected\[0\] must be in"),
    ],
)
def test_bad_state_from_the_page_is_refused_and_the_state_stays(w, resent, change, match):
    w.filter, w.selected = "label == 0", w._table.select("label == 0")[:3].tolist()
    before = page_state(w)
    w.set_state(change)
    assert page_state(w) == before  # nothing of it sticks, not even the valid keys
    assert re.search(match, w.error), w.error
    assert len(w.error) < 400
    assert sorted(change) in resent  # the page gets the kept values back
    w.set_state({"sort_ascending": False})  # a good change afterwards works and clears the error
    assert w.sort_ascending is False and w.error == ""


def test_a_filter_the_kernel_rejects_is_refused_and_shown(w, resent):
    w.set_state({"filter": "label == 2"})
    kept = page_state(w)
    for bad in ("lable == 1", "label ==", "__import__('os')", "label == 1 and caption > 3"):
        w.set_state({"filter": bad})
        assert page_state(w) == kept
        assert w.filter_error["text"] == bad and w.filter_error["message"]
    assert ["filter"] in resent


@pytest.mark.parametrize(
    "key",
    [
        "_esm",
        "_css",
        "_model_name",
        "_model_module",
        "_anywidget_id",
        "_view_name",
        "_view_module",
        "_view_count",
        "_dom_classes",
        "layout",
        "tabbable",
        "tooltip",
        "matched",
        "revision",
        "view",
        "n_rows",
        "columns",
        "classes",
        "summary",
        "history",
        "can_undo",
        "error",
        "filter_error",
        "not_a_trait",
    ],
)
def test_the_page_cannot_set_traits_it_does_not_own(w, resent, key):
    before = {k: getattr(w, k) for k in w.keys if k != "error"}
    w.set_state({key: "IPY_MODEL_x" if key == "layout" else "export default {}"})
    assert {k: getattr(w, k) for k in w.keys if k != "error"} == before
    assert f"the page cannot set {key!r}" in w.error
    if key in w.keys:
        assert [key] in resent


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (float("inf"), "value must be a finite number >= 0; got inf"),  # JSON 1e400
        (-float("inf"), "value must be a finite number >= 0; got -inf"),
        pytest.param(
            10**400, r"value must be a finite number >= 0; got 10+\.\.\. \(401 digits\)", id="huge"
        ),
        (float("nan"), "value must be a finite number >= 0; got nan"),
        ("1e400", "value must be a number; got '1e400'"),
        (None, "value must be a number; got None"),
        ([1], r"value must be a number; got \[1\]"),
        ({"a": 1}, "value must be a number"),
    ],
)
def test_overflowing_or_non_numeric_edit_values_get_a_clean_refusal(rec, table, value, match):
    bulk = {"kind": "bulk", "action": "set", "target": "matched"}
    for payload in ({"kind": "edit", "row": 1}, bulk):
        reply = rec.raw({"id": 7, **payload, "value": value})
        assert set(reply) == {"id", "error"}, reply
        assert re.search(match, reply["error"]), reply["error"]
        assert "internal error" not in reply["error"]
    assert table.revision == 0


def test_json_from_the_page_with_1e400_arrives_as_inf_and_is_refused(rec, table):
    msg = json.loads('{"id": 3, "kind": "edit", "row": 0, "value": 1e400}')
    reply = rec.raw(msg)
    assert reply["error"] == "value must be a finite number >= 0; got inf"
    msg = json.loads('{"id": 4, "kind": "edit", "row": 0, "value": 1' + "0" * 500 + "}")
    assert "finite number >= 0" in rec.raw(msg)["error"] and table.revision == 0


@pytest.mark.parametrize(
    "message",
    [
        {"id": 1, "kind": "edit", "row": "9" * 110_000, "value": 1},
        {"id": 1, "kind": "edit", "row": 1, "value": "x" * 110_000},
        {"id": 1, "kind": "rows", "start": list(range(50_000)), "count": 1},
        {"id": 1, "kind": "x" * 110_000},
        {"id": 1, "kind": "bulk", "action": "a" * 110_000, "target": "matched"},
        {"id": 1, "kind": "revert", "revision": 10**5000},
        {"id": 1, "kind": "ping", "y" * 100_000: 1},
    ],
)
def test_error_replies_quote_only_a_little_of_the_input(rec, message):
    reply = rec.raw(message)
    assert set(reply) == {"id", "error"}
    assert len(reply["error"]) <= 600, len(reply["error"])


def test_long_bad_state_is_quoted_briefly(w, resent):
    w.set_state({"selected": ["x" * 100_000]})
    assert "selected[0] must be an integer" in w.error and len(w.error) < 400
    w.set_state({"filter": "label == 1 and " + "(" * 5000})
    assert len(w.filter_error["message"]) <= 600 and w.filter == ""
    w.set_state({"filter": "x" * 20_000})
    assert "at most 10,000 characters" in w.error


def test_no_private_traitlets_validate():
    import inspect

    assert "._validate(" not in inspect.getsource(widget_mod)


# --------------------------------------------------------------------------- issue 9.2: selection
def test_a_filter_change_drops_the_selected_rows_it_hides(w, table):
    rows = list(range(20))
    w.selected = rows
    w.filter = "label == 0"
    shown = [r for r in rows if table.labels[r] == 0]
    assert 0 < len(shown) < len(rows)
    assert w.selected == shown
    w.filter = ""  # a wider filter does not bring hidden rows back
    assert w.selected == shown


def test_apply_to_selection_never_changes_a_hidden_row(rec, table, store_path):
    w = rec.w
    w.set_state({"selected": list(range(30))})
    w.set_state({"filter": "label == 1"})
    visible = [r for r in range(30) if table.labels[r] == 1]
    assert w.selected == visible
    c, _ = rec.ask("bulk", action="exclude", target="selection")
    assert c["rows"] == len(visible)
    assert c["message"] == f"r1: exclude {len(visible)} rows selected"
    disk = ww.WeightTable.open(store_path)
    changed = np.flatnonzero(disk.weights != 1).tolist()
    assert changed == visible


def test_selection_is_refused_for_rows_the_filter_hides(w, resent, table):
    w.filter = "label == 1"
    hidden = int(table.select("label == 0")[0])
    w.set_state({"selected": [hidden]})
    assert w.selected == [] and f"selected holds row {hidden}" in w.error
    with pytest.raises(traitlets.TraitError, match="which the filter 'label == 1' hides"):
        w.selected = [hidden]


def test_an_edit_under_a_weight_filter_drops_rows_it_now_hides(rec, table):
    w = rec.w
    w.filter = "weight > 0"
    w.selected = [1, 2, 3]
    rec.ask("bulk", action="exclude", target="selection")
    assert w.matched == 997 and w.selected == []
    c, _ = rec.ask("bulk", action="include", target="selection")
    assert "nothing is selected" in c["error"]
    assert table.weights[[1, 2, 3]].tolist() == [0, 0, 0]


def test_select_range_adds_only_visible_rows(rec, table):
    w = rec.w
    w.filter = "label == 2"
    w.selected = table.select("label == 2")[:2].tolist()
    rec.ask("select_range", start=5, stop=6, add=True)
    expected = sorted({*table.select("label == 2")[:2].tolist(), *table.select("label == 2")[5:7]})
    assert w.selected == expected


# --------------------------------------------------------------------------- issue 11.6: summaries
def test_summaries_of_the_matched_rows_on_request(rec, table):
    w = rec.w
    w.filter = "label == 1"
    c, _ = rec.ask("summaries", columns=["loss", "caption", "flagged", "label", "weight", "nope"])
    assert c["view"] == w.view
    by = {s["name"]: s for s in c["summaries"]}
    assert set(by) == {"loss", "caption", "flagged", "label", "weight"}
    n1 = table.count("label == 1")
    assert sum(by["loss"]["counts"]) == n1 and sum(by["loss"]["totals"]) == 1000
    assert by["label"]["values"] == [
        {"value": "1", "count": n1, "total": n1, "filter": "label == 1"}
    ]
    assert sum(v["count"] for v in by["flagged"]["values"]) == n1
    assert by["loss"]["brush"] is None and by["caption"]["picked"] is None


def test_brushing_a_histogram_puts_the_condition_in_the_filter(rec, table):
    w = rec.w
    w.filter = "label != 0"
    edges = rec.ask("summaries", columns=["loss"])[0]["summaries"][0]["edges"]
    c, _ = rec.ask("brush", column="loss", lo=edges[1] + 0.01, hi=edges[3] - 0.01)
    expected = f"label != 0 and {edges[1]:g} <= loss < {edges[3]:g}"
    assert c["filter"] == expected == w.filter
    assert c["matched"] == w.matched == table.count(expected)
    hist = rec.ask("summaries", columns=["loss"])[0]["summaries"][0]
    assert hist["brush"] == [edges[1], edges[3]] and sum(hist["counts"]) == w.matched
    c, _ = rec.ask("brush", column="loss", lo=edges[0], hi=edges[1])  # replaces it
    assert w.filter == f"label != 0 and {edges[0]:g} <= loss < {edges[1]:g}"
    c, _ = rec.ask("brush", column="caption", value="sample 3 cat")
    assert w.filter.endswith(' and caption == "sample 3 cat"') and w.matched <= 1
    c, _ = rec.ask("brush", column="loss", clear=True)
    assert w.filter == 'label != 0 and caption == "sample 3 cat"'
    w.filter = "label == 2"  # typed by hand: the page's conditions are gone
    rec.ask("brush", column="loss", lo=edges[0], hi=edges[1])
    assert w.filter == f"label == 2 and {edges[0]:g} <= loss < {edges[1]:g}"


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"column": "nope", "lo": 0, "hi": 1}, "unknown column 'nope'"),
        ({"column": "caption", "lo": 0, "hi": 1}, "is not numeric; pick a value"),
        ({"column": "loss", "value": "3"}, "has no values to pick"),
        ({"column": "loss", "lo": 0}, "a brush needs both lo and hi"),
        ({"column": "loss", "lo": 0, "hi": float("inf")}, "hi must be a finite number"),
        ({"column": "caption", "value": "x" * 5000}, "value must be at most 1,000"),
    ],
)
def test_bad_brushes_are_refused(rec, payload, match):
    before = rec.w.filter
    c, _ = rec.ask("brush", **payload)
    assert re.search(match, c["error"]), c["error"]
    assert rec.w.filter == before


def test_a_state_change_with_selection_before_filter(w, resent, table):
    # the page may send the keys in any order: the selection is checked against the
    # filter that comes with it
    twos = table.select("label == 2")[:3].tolist()
    w.set_state({"selected": twos, "filter": "label == 2"})
    assert w.filter == "label == 2" and w.selected == twos and w.error == ""
    ones = table.select("label == 1")[:2].tolist()
    with w.hold_trait_notifications():
        w.selected = []
        w.filter = "label == 1"
        w.selected = ones
    assert w.selected == ones and w.table_view.selected.tolist() == ones


def test_a_revert_that_changes_nothing_commits_nothing_and_says_so(rec, table):
    rec.ask("edit", row=0, value=2.0)
    c, _ = rec.ask("revert", revision=1)  # already at revision 1's weights
    assert c["ok"] and c["revision"] == 1 and c["rows"] == 0
    assert "no row would change" in c["message"] and table.revision == 1
    c, _ = rec.ask("revert", revision=0)
    assert c["message"] == "r2: revert to r0" and table.weights[0] == 1


def test_the_history_panel_gets_only_the_newest_revisions(table, monkeypatch):
    monkeypatch.setattr(widget_mod, "HISTORY_ROWS", 5)
    for i in range(8):
        table.set_weights([i], 2.0, message=f"edit {i}")
    w = WeightWidget(table)
    assert [h["revision"] for h in w.history] == [4, 5, 6, 7, 8]
    assert w.history[-1]["message"] == "edit 7"
