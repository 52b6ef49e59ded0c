"""Property-based tests of label editing from the page (issue 13): arbitrary and
well-formed "label", "bulk_label" and "preview" requests, mixed with undo/redo/revert,
weight edits and arbitrary ``set_state`` payloads (filters, selections), in any order.
No exception escapes a handler, every reply has its documented shape, the class panel
and the unlabelled count follow every label edit, a label edit never reaches a row the
filter hides, and the store reopened from disk equals the table, labels and classes
included.

The default example count fits CI (about 20 s); the thorough profile runs 5,000
examples::

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_widget_labels_fuzz.py --timeout 0

(profiles registered in tests/conftest.py). The arbitrary-message fuzz of every request
kind is tests/test_widget_fuzz.py; this file reuses its message and state strategies.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import weightwidget as ww
from weightwidget import _protocol as protocol
from weightwidget.widget import WeightWidget

from .test_widget_fuzz import N, jsonish, maybe, state_changes

COLUMNS = ["label", "x", "img", "weight", "row", "nope"]
#: Label texts the page may send: classes, other numbers, text, unlabelled (None).
LABELS = ["0", "1", "2", "3", "-4", "+1", "2.0", "1e3", "9" * 25, "cat", "", " 1 ", None]


def request(kind: str, optional: dict | None = None, **fields: st.SearchStrategy):
    """Well-formed requests of one kind (arbitrary fields rarely pass the contract)."""
    return st.fixed_dictionaries(
        {"id": st.integers(0, protocol.MAX_SAFE_INT), "kind": st.just(kind), **fields},
        optional=optional,
    )


rows = st.integers(0, N - 1)
labels = st.sampled_from(["0", "1", "2"]) | st.sampled_from(LABELS)  # mostly classes
well_formed = st.one_of(
    request("label", {"new": st.booleans()}, row=rows, value=labels),
    request(
        "bulk_label",
        {"new": st.booleans()},
        target=st.sampled_from(["matched", "matched", "selection"]),
        value=labels,
    ),
    request("preview", row=rows, column=st.sampled_from(["img", "img", *COLUMNS])),
    request("edit", row=rows, value=st.sampled_from([0.0, 0.5, 2.0])),
    request("undo"),
    request("redo"),
    request("revert", revision=st.integers(0, 6)),
)
# the label requests' fields, plausible or anything
malformed = st.fixed_dictionaries(
    {
        "id": maybe(st.integers(0, 2**53)),
        "kind": maybe(st.sampled_from(["label", "bulk_label", "preview"])),
    },
    optional={
        "row": maybe(st.integers(-3, N + 5)),
        "value": maybe(st.one_of(labels, st.floats(), st.text(max_size=5))),
        "new": maybe(st.booleans()),
        "target": maybe(st.sampled_from(protocol.TARGETS)),
        "column": maybe(st.sampled_from(COLUMNS)),
    },
)
requests = st.one_of(well_formed, well_formed, malformed, jsonish)
# filters a labelling session types (label edits move rows in and out of them)
filters = st.fixed_dictionaries(
    {"filter": st.sampled_from(["", "label == 1", "label is missing", "label != 0 and x > 0.3"])}
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("msg"), requests),
        st.tuples(st.just("state"), state_changes),
        st.tuples(st.just("state"), filters),
    ),
    min_size=1,
    max_size=25,
)


def make_table(path: str) -> ww.WeightTable:
    rng = np.random.default_rng(0)  # the labels test_widget_fuzz's selections are made for
    t = ww.WeightTable.from_arrays(
        labels=rng.integers(0, 3, N),
        name="fuzz-labels",
        store=path,
        x=rng.random(N),
        img=rng.random((N, 4, 4)),
    )
    t.set_labels([N - 1], None)  # one unlabelled row from the start
    return t


def label_values(t: ww.WeightTable) -> np.ndarray:
    """Each row's class (NaN: unlabelled); codes shift when a class is added, values not."""
    return np.append(t.classes.astype(np.float64), np.nan)[t.label_codes]


def check_invariants(w: WeightWidget, t: ww.WeightTable) -> None:
    ctx = w._ctx()
    for name in protocol.TRAITS:
        protocol.check_trait(name, getattr(w, name), ctx)
    assert w.revision == t.revision
    mask = np.ones(N, bool) if not w.filter.strip() else t.mask(w.filter)
    assert w.matched == int(mask.sum()) == w.table_view.matched
    assert mask[np.asarray(w.selected, dtype=np.int64)].all(), "a selected row is hidden"
    # the class panel and the status band follow label edits
    codes = t.label_codes
    per_class = np.bincount(codes[codes >= 0], minlength=len(t.classes)).tolist()
    assert [c["count"] for c in w.classes] == per_class
    assert [c["value"] for c in w.classes] == [str(c) for c in t.classes.tolist()]
    assert w.summary["unlabelled"] == t.n_unlabelled == int((codes < 0).sum())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_label_edits_from_the_page_never_break_the_widget(tmp_path_factory, steps):
    path = str(tmp_path_factory.mktemp("fuzz") / "store")
    t = make_table(path)
    w = WeightWidget(t)
    sent: list[tuple[dict, list]] = []
    w.send = lambda content, buffers=None: sent.append((content, buffers or []))
    w.send_state = lambda key=None: None  # no comm here; what it would send is the trait
    try:
        for what, payload in steps:
            if what == "state":
                w.set_state(payload)  # must not raise
                check_invariants(w, t)
                continue
            before, shown = label_values(t), w.table_view.mask()
            w._on_msg(w, payload, [])  # must not raise
            reply, buffers = sent[-1]
            kind = payload.get("kind") if isinstance(payload, dict) else None
            if isinstance(kind, str) and kind in protocol.REQUESTS:
                event(f"{kind}: {'refused' if 'error' in reply else 'answered'}")
            if "error" in reply:
                protocol.check_reply("ping", reply, buffers)
                assert "internal error" not in reply["error"], reply["error"]
            else:
                protocol.check_reply(kind, reply, buffers)
                assert reply["id"] == payload["id"]
            if kind in ("label", "bulk_label") and shown is not None:
                after = label_values(t)
                changed = ~((before == after) | (np.isnan(before) & np.isnan(after)))
                assert shown[changed].all(), "a label edit reached a row the filter hides"
            check_invariants(w, t)
        disk = ww.WeightTable.open(path)
        assert disk.revision == t.revision
        np.testing.assert_array_equal(disk.weights, t.weights)
        np.testing.assert_array_equal(disk.classes, t.classes)
        np.testing.assert_array_equal(disk.label_codes, t.label_codes)
    finally:
        w.close()
