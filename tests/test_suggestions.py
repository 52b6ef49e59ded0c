"""The suggestions panel (issue 12 point 3, issue 13 point 3) and runs in the history (issue
12 point 4), without a browser: the view's lines and counts against numpy on a table with
runs, the filters they write, the widget's handlers (replies checked against the contract)
and the revisions their bulk actions commit, checked in the store reopened from disk."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import weightwidget as ww
from weightwidget import _protocol as protocol
from weightwidget import view
from weightwidget.view import TableView
from weightwidget.widget import WeightWidget

pytest.importorskip("cleanlab.filter")  # find_label_issues' detection (the labels extra)

CLASSES = np.array(["<b>emu</b>", "cat", "dog", "yak"], dtype=object)  # sorted: table.classes


def noisy_table(path: str, *, text: bool = False, label: str = "label", n: int = 3000):
    """Labels with 10% flipped and 300 missing, probabilities from a model near the truth,
    a metrics run ``m1`` and a label-issue run ``r1``."""
    rng = np.random.default_rng(0)
    k = len(CLASSES)
    truth = rng.choice(k, n, p=[0.4, 0.3, 0.2, 0.1])
    codes = truth.copy()
    flip = rng.random(n) < 0.1
    codes[flip] = (codes[flip] + rng.integers(1, k, flip.sum())) % k
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    missing = rng.choice(n, 300, replace=False)
    if text:
        values = CLASSES[codes].copy()
        values[missing] = None
    else:
        values = codes.astype(float)
        values[missing] = np.nan
    df = pd.DataFrame({label: values, "x": rng.random(n)})
    t = ww.WeightTable.from_pandas(df, label=label, name="noisy", store=path)
    ww.collect_metrics(t, probs, run="m1")
    ww.find_label_issues(t, probs, run="r1", where=t.label_codes >= 0)
    return t, probs


@pytest.fixture
def noisy(tmp_path):
    return noisy_table(str(tmp_path / "s"))


def by_key(items):
    return {s.key: s for s in items}


def expected_counts(t: ww.WeightTable) -> dict[str, int]:
    """Each line's count from numpy alone (no filter language, no view code)."""
    w = np.asarray(t.weights)
    inc = w > 0
    codes = np.asarray(t.label_codes)
    labelled = codes >= 0
    issue = np.asarray(t.column("r1_label_issue"), dtype=bool)
    suggested = pd.Index(t.classes).get_indexer(np.asarray(t.column("r1_suggested_label")))
    loss = np.asarray(t.column("m1_loss"))
    conf = np.asarray(t.column("m1_confidence"))
    finite = np.sort(loss[np.isfinite(loss)])[::-1]
    q_loss = finite[math.ceil(0.01 * finite.size) - 1]
    measured = np.sort(conf[labelled & np.isfinite(conf)])
    q_conf = measured[math.ceil(0.01 * measured.size) - 1]
    return {
        "label_issues:r1": int((issue & inc).sum()),
        "relabels:r1": int((issue & inc & (suggested != codes)).sum()),
        "hardest:m1": int(((loss >= q_loss) & inc).sum()),
        "least_confident:m1": int(((conf <= q_conf) & inc & labelled).sum()),
        "label_next": int((~labelled).sum()),
        "excluded": int((w == 0).sum()),
    }


# --------------------------------------------------------------------------- the view
def test_counts_equal_numpy_and_the_filters_they_write(noisy):
    t, _ = noisy
    t.set_weights(np.arange(0, 3000, 7), 0.0)  # some rows excluded, of every kind
    items = view.suggestions(t)
    assert [s.kind for s in items] == list(view.SUGGESTION_KINDS)
    want = expected_counts(t)
    assert {s.key: s.count for s in items} == want
    assert want["label_issues:r1"] > 100 and want["excluded"] == 429
    assert 20 < want["hardest:m1"] <= 40  # 1% of the 2,700 measured rows, still included
    for s in items:
        assert t.count(s.filter) == s.count, s.filter  # a click shows exactly these rows
    lines = by_key(items)
    assert lines["label_issues:r1"].filter == "r1_label_issue and weight > 0"
    assert lines["relabels:r1"].filter == (
        "r1_label_issue and label != r1_suggested_label and weight > 0"
    )
    assert lines["least_confident:m1"].filter.endswith("and label is not missing and weight > 0")
    # the bounds are written with the fewest digits that select the same rows
    for key in ("hardest:m1", "least_confident:m1"):
        bound = lines[key].filter.split()[2]
        assert len(bound.replace(".", "").lstrip("0")) <= 5, lines[key].filter
    assert lines["label_next"].filter == "label is missing"
    assert lines["excluded"].filter == "weight == 0"
    sorts = {s.key: (s.sort_by, s.ascending) for s in items}
    assert sorts == {
        "label_issues:r1": ("r1_label_quality", True),
        "relabels:r1": ("r1_label_quality", True),
        "hardest:m1": ("m1_loss", False),
        "least_confident:m1": ("m1_confidence", True),
        "label_next": ("m1_confidence", True),
        "excluded": (None, True),
    }
    assert lines["excluded"].actions == ("include",)
    assert "relabel" in lines["relabels:r1"].actions and lines["label_next"].actions == ()


def test_text_labels_and_a_label_column_that_needs_quotes(tmp_path):
    t, _ = noisy_table(str(tmp_path / "s"), text=True, label="class name")
    items = by_key(view.suggestions(t))
    relabels = items["relabels:r1"]
    assert relabels.filter == (
        "r1_label_issue and `class name` != r1_suggested_label and weight > 0"
    )
    assert items["label_next"].filter == "`class name` is missing"
    for s in items.values():
        assert t.count(s.filter) == s.count
    assert relabels.count == expected_relabels(t)
    ids, labels = view.suggested_labels(t, "r1", t.select(relabels.filter))
    assert ids.size == relabels.count and set(labels) <= set(CLASSES)


def expected_relabels(t):
    suggested = np.asarray(t.column("r1_suggested_label").astype(object))
    current = np.asarray(t.labels, dtype=object)
    issue = np.asarray(t.column("r1_label_issue"), dtype=bool)
    return int((issue & (t.weights > 0) & (suggested != current)).sum())


def test_counts_are_cached_per_version_and_follow_every_edit(noisy):
    t, _ = noisy
    first = view.suggestions(t)
    assert view.suggestions(t) is first  # same version: the cache answers
    lines = by_key(first)
    issues = t.select(lines["label_issues:r1"].filter)
    t.set_weights(issues[:50], 0.0, message="exclude 50")
    after = by_key(view.suggestions(t))
    assert after["label_issues:r1"].count == lines["label_issues:r1"].count - 50
    assert after["excluded"].count == 50
    # the thresholds are the run's: a weight edit leaves every filter text as it was
    assert [s.filter for s in after.values()] == [s.filter for s in lines.values()]
    assert {k: s.count for k, s in after.items()} == expected_counts(t)
    # a label edit: relabelled rows leave "suggested relabels"
    relabel = t.select(after["relabels:r1"].filter)[:30]
    ids, labels = view.suggested_labels(t, "r1", relabel)
    assert ids.tolist() == relabel.tolist()
    t.set_labels(ids, labels, message="relabel 30")
    again = by_key(view.suggestions(t))
    assert again["relabels:r1"].count == after["relabels:r1"].count - 30
    assert again["label_issues:r1"].count == after["label_issues:r1"].count
    assert {k: s.count for k, s in again.items()} == expected_counts(t)
    # labelling unlabelled rows takes them off "label next"
    todo = t.select("label is missing")[:10]
    t.set_labels(todo, t.classes[0])
    assert by_key(view.suggestions(t))["label_next"].count == 290
    assert {k: s.count for k, s in by_key(view.suggestions(t)).items()} == expected_counts(t)
    # the same run computed again: new columns, new thresholds
    before = by_key(view.suggestions(t))["hardest:m1"].filter
    rng = np.random.default_rng(7)
    ww.collect_metrics(t, rng.dirichlet(np.ones(len(t.classes)), len(t)), run="m1")
    assert by_key(view.suggestions(t))["hardest:m1"].filter != before
    assert {k: s.count for k, s in by_key(view.suggestions(t)).items()} == expected_counts(t)


def test_another_process_sees_the_same_counts(noisy):
    from .conftest import run_json

    t, _ = noisy
    t.set_weights(np.arange(100), 0.0)
    mine = {s.key: s.count for s in view.suggestions(t)}
    theirs = run_json(
        f"""
        import json, weightwidget as ww
        from weightwidget import view
        t = ww.WeightTable.open({t.store_url!r})
        print(json.dumps({{s.key: s.count for s in view.suggestions(t)}}))
        """
    )
    assert theirs == mine


def test_label_next_follows_suggest_to_label_order(noisy):
    t, probs = noisy
    line = by_key(view.suggestions(t))["label_next"]
    v = TableView(t, filter=line.filter, sort_by=line.sort_by, ascending=line.ascending)
    shown = v.ids(0, 50)
    nxt = ww.suggest_to_label(t, probs, 50, strategy="least_confident", seed=0)
    assert shown.tolist() == nxt.index.tolist()  # continuous scores: no ties to break
    # a run's rank column (any strategy) orders the line when it is the newest
    margin = ww.suggest_to_label(t, probs, 40, strategy="margin", seed=0)
    rank = np.full(len(t), np.nan)
    rank[margin.index] = np.arange(1, 41)
    t.set_columns({"al_label_next": rank}, run="al", info={"kind": "label_next"})
    line = by_key(view.suggestions(t))["label_next"]
    assert (line.sort_by, line.run, line.count) == ("al_label_next", "al", 300)
    v = TableView(t, filter=line.filter, sort_by=line.sort_by, ascending=line.ascending)
    assert v.ids(0, 40).tolist() == margin.index.tolist()


def test_a_table_without_runs_lists_excluded_rows_only(tmp_path):
    t = ww.WeightTable.from_arrays(labels=np.arange(20) % 2, name="p", store=str(tmp_path / "s"))
    t.set_weights([3, 4], 0.0)
    items = view.suggestions(t)
    assert [(s.key, s.count, s.filter) for s in items] == [("excluded", 2, "weight == 0")]
    with pytest.raises(ValueError, match=r"no suggestion 'hardest:x' at revision 1; there are"):
        view.suggestion(t, "hardest:x")


def test_ties_at_the_cut_do_not_swallow_the_whole_line(tmp_path):
    # half the rows share the loss at the 1% cut: the line keeps the rows beyond it
    loss = np.r_[np.full(5, 20.0), np.full(500, 3.0), np.linspace(0, 2, 495)]
    t = ww.WeightTable.from_arrays(labels=np.arange(1000) % 2, name="c", store=str(tmp_path / "s"))
    conf = np.full(1000, 0.5)
    t.set_columns({"m_loss": loss, "m_confidence": conf}, run="m", info={"kind": "metrics"})
    items = by_key(view.suggestions(t))
    assert (items["hardest:m"].filter, items["hardest:m"].count) == ("m_loss > 3 and weight > 0", 5)
    # all tied: nothing lies beyond, so the line holds them all
    assert items["least_confident:m"].filter == "m_confidence <= 0.5 and weight > 0"
    assert items["least_confident:m"].count == 1000
    # ties at the very top (clipped losses) are all among the hardest
    t.set_columns(
        {"m_loss": np.r_[np.full(50, 16.1), np.linspace(0, 10, 950)]},
        run="m",
        info={"kind": "metrics"},
    )
    hardest = by_key(view.suggestions(t))["hardest:m"]
    assert (hardest.filter, hardest.count) == ("m_loss >= 16 and weight > 0", 50)


def test_suggested_labels_skip_rows_without_another_suggestion(noisy):
    t, _ = noisy
    suggested = pd.Index(t.classes).get_indexer(np.asarray(t.column("r1_suggested_label")))
    agree = np.flatnonzero(suggested == t.label_codes)[:5]
    unchecked = np.flatnonzero(t.label_codes < 0)[:5]  # find_label_issues left them out
    differ = np.flatnonzero((suggested != t.label_codes) & (suggested >= 0))[:5]
    ids, labels = view.suggested_labels(t, "r1", np.r_[agree, unchecked, differ])
    assert ids.tolist() == differ.tolist()
    assert labels.tolist() == t.classes[suggested[differ]].tolist()
    with pytest.raises(ValueError, match="run 'm1' wrote no 'm1_suggested_label' column"):
        view.suggested_labels(t, "m1", differ)


def test_view_and_contract_name_the_same_kinds_and_actions():
    assert view.SUGGESTION_KINDS == protocol.SUGGESTION_KINDS
    assert view.SUGGESTION_ACTIONS == protocol.SUGGESTION_ACTIONS


# --------------------------------------------------------------------------- the widget
class Recorder:
    def __init__(self, w: WeightWidget) -> None:
        self.w = w
        self.sent: list[tuple[dict, list]] = []
        self.next_id = 1
        w.send = lambda content, buffers=None: self.sent.append((content, buffers or []))

    def ask(self, kind: str, **payload) -> dict:
        msg = {"id": self.next_id, "kind": kind, **payload}
        self.next_id += 1
        self.w._on_msg(self.w, msg, [])
        content, buffers = self.sent[-1]
        assert content["id"] == msg["id"]
        protocol.check_reply(kind, content, buffers)  # every reply has its documented shape
        return content

    def show(self, key: str) -> dict:
        """What a click on a line does: the page sets the line's filter and sort."""
        item = next(i for i in self.ask("suggestions")["items"] if i["key"] == key)
        self.w.set_state(
            {
                "filter": item["filter"],
                "sort_by": item["sort_by"],
                "sort_ascending": item["ascending"],
            }
        )
        return item


@pytest.fixture
def rec(noisy):
    w = WeightWidget(noisy[0])
    yield Recorder(w)
    w.close()


def test_suggestions_reply_lists_the_views_lines(rec):
    t = rec.w.table
    reply = rec.ask("suggestions")
    assert reply["kind"] == "suggestions" and reply["revision"] == t.revision
    assert reply["items"] == [s.payload() for s in view.suggestions(t)]
    assert {i["key"]: i["count"] for i in reply["items"]} == expected_counts(t)


def test_showing_a_line_then_excluding_commits_one_named_revision(rec):
    t, w = rec.w.table, rec.w
    item = rec.show("label_issues:r1")
    assert (w.filter, w.sort_by, w.sort_ascending) == (item["filter"], "r1_label_quality", True)
    assert w.matched == item["count"]
    rows = t.select(item["filter"])
    rev = t.revision
    reply = rec.ask("suggestion_action", key="label_issues:r1", action="exclude", target="matched")
    n = item["count"]
    assert reply == {
        "id": reply["id"],
        "ok": True,
        "revision": rev + 1,
        "rows": n,
        "message": f"r{rev + 1}: exclude {n:,} label issues of run r1",
    }
    disk = ww.WeightTable.open(t.store_url)
    assert disk.revision == rev + 1
    assert np.flatnonzero(disk.weights == 0).tolist() == rows.tolist()
    assert disk.history().iloc[-1]["message"] == f"exclude {n:,} label issues of run r1"
    counts = {i["key"]: i["count"] for i in rec.ask("suggestions")["items"]}
    assert counts["label_issues:r1"] == 0 and counts["excluded"] == n
    assert counts == expected_counts(t)
    assert w.matched == 0  # the line's rows left it: the table shows none


def test_actions_on_the_selection_change_only_selected_rows(rec):
    t, w = rec.w.table, rec.w
    rec.show("hardest:m1")
    top = t.sort_order("m1_loss", ascending=False)[:3]
    w.selected = sorted(top.tolist())
    before = t.weights.copy()
    reply = rec.ask(
        "suggestion_action", key="hardest:m1", action="scale", target="selection", value=0.25
    )
    assert reply["message"].endswith(
        "down-weight 3 selected hardest rows by loss of run m1 (weight × 0.25)"
    )
    changed = np.flatnonzero(ww.WeightTable.open(t.store_url).weights != before)
    assert changed.tolist() == sorted(top.tolist())
    assert t.weights[top].tolist() == [0.25] * 3


def test_relabel_sets_the_suggested_labels_as_one_revision(rec):
    t, w = rec.w.table, rec.w
    item = rec.show("relabels:r1")
    rows = t.select(item["filter"])
    suggested = np.asarray(t.column("r1_suggested_label"))[rows]
    reply = rec.ask("suggestion_action", key="relabels:r1", action="relabel", target="matched")
    n = rows.size
    assert reply["message"].endswith(
        f"relabel {n:,} suggested relabels of run r1 to the suggested label"
    )
    disk = ww.WeightTable.open(t.store_url)
    assert disk.labels[rows].tolist() == suggested.tolist()
    assert disk.revision == t.revision and disk.history().iloc[-1]["rows_changed"] == n
    counts = {i["key"]: i["count"] for i in rec.ask("suggestions")["items"]}
    assert counts["relabels:r1"] == 0 and counts == expected_counts(t)
    # from the label-issue line, rows already carrying their suggestion are skipped
    rec.show("label_issues:r1")
    reply = rec.ask("suggestion_action", key="label_issues:r1", action="relabel", target="matched")
    assert "error" in reply and "nothing to relabel" in reply["error"]
    assert w.filter == "r1_label_issue and weight > 0"


def test_include_restores_excluded_rows(rec):
    t = rec.w.table
    t.set_weights([5, 6, 7], 0.0)
    rec.show("excluded")
    reply = rec.ask("suggestion_action", key="excluded", action="include", target="matched")
    assert reply["message"].endswith("include 3 excluded rows")
    assert ww.WeightTable.open(t.store_url).weights[[5, 6, 7]].tolist() == [1.0] * 3


@pytest.mark.parametrize(
    ("key", "action", "extra", "match"),
    [
        ("label_issues:r1", "exclude", {}, "the table no longer shows the label issues of run r1"),
        ("excluded", "exclude", {}, "excluded rows offers include, not 'exclude'"),
        ("label_next", "exclude", {}, "unlabelled: label next offers no action, not 'exclude'"),
        ("hardest:r9", "exclude", {}, "no suggestion 'hardest:r9'"),
    ],
)
def test_refused_actions_say_why_and_change_nothing(rec, key, action, extra, match):
    t = rec.w.table
    rec.w.filter = "x > 0.5"  # not the line's filter
    rev = t.revision
    reply = rec.ask("suggestion_action", key=key, action=action, target="matched", **extra)
    assert match in reply["error"]
    assert t.revision == rev


def test_scale_needs_a_factor_and_selection_needs_rows(rec):
    rec.show("label_issues:r1")
    reply = rec.ask("suggestion_action", key="label_issues:r1", action="scale", target="matched")
    assert "value must be the factor" in reply["error"]
    reply = rec.ask(
        "suggestion_action", key="label_issues:r1", action="exclude", target="selection"
    )
    assert "nothing is selected" in reply["error"]
    rec.w._on_msg(
        rec.w,
        {"id": 99, "kind": "suggestion_action", "key": "x", "action": "burn", "target": "matched"},
        [],
    )
    assert "action must be one of" in rec.sent[-1][0]["error"]


def test_runs_trait_lists_runs_beside_revisions(rec):
    t, w = rec.w.table, rec.w
    runs = t.runs()
    assert [(r["run"], r["revision"], r["committed"], r["kind"]) for r in w.runs] == [
        ("m1", 0, 1, "metrics"),
        ("r1", 1, 2, "label_issues"),
    ]
    protocol.check_trait("runs", w.runs, w._ctx())
    m1, r1 = w.runs
    assert m1["headline"] == [
        {
            "name": "accuracy",
            "value": pytest.approx(runs.aggregates[0]["accuracy"]),
            "unit": "share",
        },
        {"name": "loss", "value": pytest.approx(runs.aggregates[0]["loss"]), "unit": "number"},
    ]
    flagged = int(np.asarray(t.column("r1_label_issue")).sum())
    assert r1["headline"][0] == {"name": "flagged", "value": flagged, "unit": "count"}
    assert r1["columns"] == ["r1_label_issue", "r1_label_quality", "r1_suggested_label"]
    # a new run from Python shows up at once, computed at the current revision
    t.set_weights([1], 0.0)
    probs = np.full((len(t), len(t.classes)), 1 / len(t.classes))
    ww.collect_metrics(t, probs, run="m2")
    assert [(r["run"], r["revision"]) for r in w.runs][-1] == ("m2", 3)
