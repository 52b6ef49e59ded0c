"""Property-based tests of everything the page can send (issue 9 point 7, acceptance):
arbitrary requests and ``set_state`` payloads, well-formed or not, in any order. No
exception escapes a handler, every reply has its documented shape, the traits stay
valid (the selection only holds visible rows), every suggestion's count is what its
filter matches, and the store reopened from disk equals the table (weights and labels).
The table carries a metrics run, a label-issue run and unlabelled rows, and the steps
include clicks on suggestion lines, so the suggestions panel's actions (exclude,
down-weight, relabel, include) run against whatever state came before.

The default example count fits CI (about 15 s); the thorough profile runs 5,000
examples (about 15 min on 2 busy cores)::

    HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_widget_fuzz.py --timeout 0

(profiles registered in tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import weightwidget as ww
from weightwidget import _protocol as protocol
from weightwidget import view
from weightwidget.widget import WeightWidget

N = 60
COLUMNS = ["label", "x", "caption", "flag", "weight", "row"]
FILTERS = [
    "",
    "label == 1",
    "x > 0.5",
    "weight > 0.5",
    "weight == 0",
    "caption contains 'a'",
    "flag",
    "not flag and label in [0, 2]",
    "lable == 1",
    "x >",
    "(",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 100),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "x" * 3000, "é²`\"'\\", "IPY_MODEL_x", "label == 1"]),
)
jsonish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def maybe(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly plausible values, sometimes anything."""
    return st.one_of(good, good, good, jsonish)


# suggestion lines of make_table's runs, and a few that do not exist
KEYS = [
    "label_issues:iss",
    "relabels:iss",
    "hardest:met",
    "least_confident:met",
    "label_next",
    "excluded",
    "hardest:nope",
    "",
]

FIELDS = {
    "start": maybe(st.integers(-3, N + 5)),
    "count": maybe(st.integers(-1, 120)),
    "stop": maybe(st.integers(-3, N + 5)),
    "row": maybe(st.integers(-3, N + 5)),
    "value": maybe(st.one_of(st.floats(0, 10), st.sampled_from([0.0, 1.0, 1e308, 1e-300]))),
    "action": maybe(st.sampled_from(protocol.BULK_ACTIONS + protocol.SUGGESTION_ACTIONS)),
    "key": maybe(st.sampled_from(KEYS)),
    "target": maybe(st.sampled_from(protocol.TARGETS)),
    "add": maybe(st.booleans()),
    "revision": maybe(st.integers(-1, 12)),
    "columns": maybe(st.lists(st.sampled_from([*COLUMNS, "nope"]), max_size=6)),
    "column": maybe(st.sampled_from([*COLUMNS, "nope"])),
    "lo": maybe(st.floats(-1, 2)),
    "hi": maybe(st.floats(-1, 2)),
    "clear": maybe(st.booleans()),
}

# well-formed suggestion requests, so the panel's actions also run (not only their refusals)
suggestion_requests = st.one_of(
    st.fixed_dictionaries({"id": st.integers(0, 99), "kind": st.just("suggestions")}),
    st.fixed_dictionaries(
        {
            "id": st.integers(0, 99),
            "kind": st.just("suggestion_action"),
            "key": st.sampled_from(KEYS),
            "action": st.sampled_from(protocol.SUGGESTION_ACTIONS),
            "target": st.sampled_from(protocol.TARGETS),
        },
        optional={"value": st.floats(0, 2)},
    ),
)
OFFERED = {
    "label_issues": ["exclude", "scale", "relabel"],
    "relabels": ["relabel", "exclude", "scale"],
    "hardest": ["exclude", "scale"],
    "least_confident": ["exclude", "scale"],
    "excluded": ["include"],
}
# a line's action: the key of the line the page shows, then the request
actions = st.sampled_from(KEYS).flatmap(
    lambda key: st.tuples(
        st.just(key),
        st.fixed_dictionaries(
            {
                "id": st.integers(0, 99),
                "kind": st.just("suggestion_action"),
                "key": st.just(key),
                # mostly an action the line offers, on the shown rows
                "action": st.sampled_from(OFFERED.get(key.split(":")[0]) or ["include"])
                | st.sampled_from(protocol.SUGGESTION_ACTIONS),
                "target": st.sampled_from(["matched", "matched", "selection"]),
            },
            optional={"value": st.floats(0, 2)},
        ),
    )
)
requests = st.one_of(
    suggestion_requests,
    st.fixed_dictionaries(
        {
            "id": maybe(st.integers(0, 2**53)),
            "kind": maybe(st.sampled_from(sorted(protocol.REQUESTS))),
        },
        optional=FIELDS,
    ),
    jsonish,
)

STATE_VALUES = {
    "filter": maybe(st.sampled_from([*FILTERS, "label == 0", "label == 2"])),
    "sort_by": maybe(st.sampled_from([None, "", *COLUMNS, "nope"])),
    "sort_ascending": maybe(st.booleans()),
    "selected": maybe(
        st.one_of(
            st.lists(st.integers(-2, N + 2), max_size=12),
            # rows one filter shows and another hides (make_table's labels, same seed)
            st.sampled_from(
                [
                    np.flatnonzero(np.random.default_rng(0).integers(0, 3, N) == k)[:4].tolist()
                    for k in range(3)
                ]
            ),
        )
    ),
    "select_all": maybe(st.booleans()),
}
OTHER_KEYS = [
    *protocol.KERNEL_TRAITS,
    "_esm",
    "_css",
    "_model_name",
    "_anywidget_id",
    "_view_count",
    "layout",
    "tabbable",
    "tooltip",
    "bogus",
]
state_changes = st.one_of(
    # the page's keys in any order (a selection may come before its filter)
    st.fixed_dictionaries({}, optional=STATE_VALUES).flatmap(
        lambda d: st.permutations(list(d.items())).map(dict)
    ),
    st.dictionaries(st.sampled_from(OTHER_KEYS) | st.text(max_size=8), jsonish, max_size=3),
    jsonish,
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("msg"), requests),
        st.tuples(st.just("state"), state_changes),
        # a click on a suggestion line: the page sets the line's filter and sort
        st.tuples(st.just("show"), st.sampled_from(KEYS)),
        # a click on a line, then one of its actions (on the shown or the selected rows)
        st.tuples(st.just("show+act"), actions),
    ),
    min_size=1,
    max_size=25,
)


def make_table(path: str) -> ww.WeightTable:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, N)
    t = ww.WeightTable.from_arrays(
        labels=labels,
        name="fuzz",
        store=path,
        x=rng.random(N),
        caption=np.array(["ab", "cd", "a b"] * (N // 3), dtype=object),
        flag=rng.random(N) < 0.5,
    )
    # a metrics run, a label-issue run (its columns as find_label_issues writes them) and
    # two unlabelled rows: every suggestion line exists
    probs = rng.dirichlet(np.ones(3), N)
    ww.collect_metrics(t, probs, run="met")
    t.set_columns(
        {
            "iss_label_issue": rng.random(N) < 0.3,
            "iss_label_quality": rng.random(N),
            "iss_suggested_label": rng.integers(0, 3, N),
        },
        run="iss",
        info={"kind": "label_issues"},
    )
    t.set_labels([N - 2, N - 1], None)
    return t


def check_invariants(w: WeightWidget, t: ww.WeightTable) -> None:
    ctx = w._ctx()
    for name in protocol.TRAITS:
        protocol.check_trait(name, getattr(w, name), ctx)
    assert w.revision == t.revision
    mask = np.ones(N, bool) if not w.filter.strip() else t.mask(w.filter)
    assert w.matched == int(mask.sum()) == w.table_view.matched
    sel = np.asarray(w.selected, dtype=np.int64)
    assert sel.tolist() == sorted(set(sel.tolist()))
    assert mask[sel].all(), "a selected row is hidden by the filter"
    assert not (w.select_all and w.selected)
    assert w.filter == w.table_view.filter and w.sort_by == w.table_view.sort_by
    for s in view.suggestions(t):
        assert t.count(s.filter) == s.count, s


def show(w: WeightWidget, t: ww.WeightTable, key: str) -> None:
    """A click on a suggestion line: the page sets the line's filter and sort."""
    item = next((s for s in view.suggestions(t) if s.key == key), None)
    if item is not None:
        w.set_state(
            {"filter": item.filter, "sort_by": item.sort_by, "sort_ascending": item.ascending}
        )


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_arbitrary_page_input_never_breaks_the_widget(tmp_path_factory, steps):
    path = str(tmp_path_factory.mktemp("fuzz") / "store")
    t = make_table(path)
    w = WeightWidget(t)
    sent: list[tuple[dict, list]] = []
    w.send = lambda content, buffers=None: sent.append((content, buffers or []))
    w.send_state = lambda key=None: None  # no comm here; what it would send is the trait
    try:
        for what, payload in steps:
            if what == "show+act":
                show(w, t, payload[0])
                what, payload = "msg", payload[1]
            if what == "msg":
                before = len(sent)
                w._on_msg(w, payload, [])  # must not raise
                assert len(sent) == before + 1, "every request gets exactly one reply"
                reply, buffers = sent[-1]
                kind = payload.get("kind") if isinstance(payload, dict) else None
                if (
                    isinstance(kind, str) and kind in protocol.REQUESTS
                ):  # counted by --hypothesis-show-statistics
                    event(f"{kind}: {'refused' if 'error' in sent[-1][0] else 'answered'}")
                if "error" in reply:
                    protocol.check_reply("ping", reply, buffers)
                    assert "internal error" not in reply["error"], reply["error"]
                else:
                    protocol.check_reply(kind, reply, buffers)
                    assert reply["id"] == payload["id"]
            elif what == "show":
                show(w, t, payload)
            else:
                w.set_state(payload)  # must not raise
            check_invariants(w, t)
        disk = ww.WeightTable.open(path)
        assert disk.revision == t.revision
        np.testing.assert_array_equal(disk.weights, t.weights)
        np.testing.assert_array_equal(disk.label_codes, t.label_codes)
    finally:
        w.close()
