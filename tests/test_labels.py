"""Labels as data (issue 13 points 1 and 2): missing labels, label edits as revisions.

Unlabelled rows: accepted at construction (None, NaN, pd.NA or a sentinel),
code -1, never a class, counted in summaries, left out of class balance and
balance(), visible to filters. Label edits: revisions with history, diff,
selective undo/redo, revert, other processes, past revisions, new classes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weightwidget as ww
from weightwidget import _serialize
from weightwidget.errors import NothingChangedWarning, ReadOnlyTableError, UndoConflictError

from .conftest import run_json

# ---------------------------------------------------------------- missing labels


@pytest.mark.parametrize(
    "labels",
    [
        [0, None, 2, 1, None],
        [0.0, np.nan, 2.0, 1.0, np.nan],
        pd.array([0, pd.NA, 2, 1, pd.NA], dtype="Int64"),
        pd.Series([0, None, 2, 1, None], dtype="float32"),
    ],
    ids=["None", "NaN", "pd.NA", "float32-NaN"],
)
def test_numeric_missing_labels_are_unlabelled_rows(labels, store_path):
    t = ww.WeightTable.from_arrays(labels=labels, store=store_path)
    assert t.classes.tolist() == [0, 1, 2]  # whole numbers stay ints; no NaN class
    assert t.classes.dtype.kind == "i"
    assert t.label_codes.tolist() == [0, -1, 2, 1, -1]
    assert t.n_unlabelled == 2 and t.n_labelled == 3
    assert "(2 unlabelled)" in repr(t)
    col = t.column("label")  # what filters see: float with NaN
    assert col.dtype.kind == "f" and np.isnan(col[[1, 4]]).all()
    assert t.select("label == 2").tolist() == [2]


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA])
def test_text_missing_labels_are_unlabelled_rows(missing, store_path):
    df = pd.DataFrame({"y": ["cat", missing, "dog", "cat"], "x": [1.0, 2.0, 3.0, 4.0]})
    t = ww.WeightTable.from_pandas(df, label="y", store=store_path)
    assert t.classes.tolist() == ["cat", "dog"]
    assert t.label_codes.tolist() == [0, -1, 1, 0]
    col = t.column("y")
    assert isinstance(col, pd.Categorical) and col.codes[1] == -1
    assert pd.isna(t.labels[1])


@pytest.mark.parametrize(
    ("labels", "sentinel", "classes", "codes"),
    [
        ([3, -1, 5, 3], -1, [3, 5], [0, -1, 1, 0]),
        (np.array([3, -1, 5, 3], dtype=np.int8), -1, [3, 5], [0, -1, 1, 0]),
        ([3.0, -1.0, 5.0, 3.0], -1, [3, 5], [0, -1, 1, 0]),
        (["a", "?", "b", None], "?", ["a", "b"], [0, -1, 1, -1]),
        (["a", "b"], "?", ["a", "b"], [0, 1]),  # the sentinel may be absent
    ],
)
def test_missing_label_sentinel(labels, sentinel, classes, codes, store_path):
    t = ww.WeightTable.from_arrays(labels=labels, missing_label=sentinel, store=store_path)
    assert t.classes.tolist() == classes
    assert t.label_codes.tolist() == codes
    assert sentinel not in t.classes.tolist()


def test_missing_label_sentinel_of_the_wrong_kind_is_refused(store_path):
    with pytest.raises(TypeError, match="holds text, so missing_label must be a string"):
        ww.WeightTable.from_arrays(labels=["a", "b"], missing_label=-1, store=store_path)
    with pytest.raises(TypeError, match="holds numbers, so missing_label must be a number"):
        ww.WeightTable.from_arrays(labels=[1, 2], missing_label="?", store=store_path)
    with pytest.raises(ValueError, match="beyond 2\\*\\*53"):
        ww.WeightTable.from_arrays(labels=[2**60, -1], missing_label=-1, store=store_path)


def test_from_pandas_and_torch_take_missing_label(store_path, tmp_path):
    torch = pytest.importorskip("torch")
    df = pd.DataFrame({"label": [1, -1, 2]})
    t = ww.WeightTable.from_pandas(df, label="label", missing_label=-1, store=store_path)
    assert t.n_unlabelled == 1
    ds = torch.utils.data.TensorDataset(torch.zeros(3, 2), torch.tensor([1, -1, 2]))
    t = ww.WeightTable.from_torch_dataset(
        ds, missing_label=-1, store=str(tmp_path / "torch"), progress=False
    )
    assert t.label_codes.tolist() == [0, -1, 1]


def test_a_wholly_unlabelled_table_can_be_labelled_from_scratch(store_path):
    t = ww.WeightTable.from_arrays(labels=np.full(4, np.nan), store=store_path)
    assert t.classes.tolist() == [] and t.n_unlabelled == 4
    with pytest.raises(ValueError, match="no labelled row has a weight > 0"):
        t.class_balance()
    t.set_labels([0, 1], [7, 3], allow_new_classes=True)
    assert t.classes.tolist() == [3, 7]
    assert t.label_codes.tolist() == [1, 0, -1, -1]


def test_reopening_with_the_same_missing_labels_reuses_the_store(store_path):
    labels = ["a", None, "b"]
    t = ww.WeightTable.from_arrays(labels=labels, store=store_path)
    t.set_weights([0], 3.0)
    again = ww.WeightTable.from_arrays(labels=labels, store=store_path)
    assert again.revision == 1 and again.label_codes.tolist() == [0, -1, 1]
    reopened = ww.WeightTable.open(store_path)
    assert reopened.label_codes.tolist() == [0, -1, 1]


@pytest.fixture
def partly(store_path):
    """A 5-class table (as the shared ``frame``) with every 4th row unlabelled."""
    rng = np.random.default_rng(1)
    n = 400
    y = rng.choice(5, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05]).astype(float)
    y[::4] = np.nan
    return ww.WeightTable.from_arrays(
        labels=y, name="partly", store=store_path, loss=rng.gamma(2.0, 1.0, n)
    )


def test_class_balance_leaves_unlabelled_rows_out_whatever_their_weight(partly):
    codes = partly.label_codes
    partly.set_weights(np.flatnonzero(codes < 0), 50.0)
    cb = partly.class_balance()
    labelled = codes >= 0
    assert cb["count"].sum() == labelled.sum()
    assert cb.attrs["n_unlabelled"] == 100 and cb.attrs["n_labelled"] == 300
    np.testing.assert_allclose(cb["share"].sum(), 1.0)
    np.testing.assert_allclose(cb["effective_share"].sum(), 1.0)
    assert cb["weight_sum"].sum() == pytest.approx(labelled.sum())  # the 50s are out
    assert _serialize.class_counts(partly).tolist() == cb["count"].tolist()
    payload = _serialize.classes_payload(partly)
    assert [c["weight_sum"] for c in payload] == cb["weight_sum"].tolist()


def test_balance_leaves_unlabelled_rows_as_they_are(partly):
    unl = partly.label_codes < 0
    partly.set_weights(np.flatnonzero(unl), 2.5)
    partly.balance("balanced")
    np.testing.assert_array_equal(partly.weights[unl], 2.5)
    cb = partly.class_balance()
    np.testing.assert_allclose(cb["effective_share"], 1 / 5)  # balanced over labelled rows
    partly.balance("inverse_frequency", where="loss > 1")
    np.testing.assert_array_equal(partly.weights[unl], 2.5)


def test_summaries_say_how_many_are_unlabelled(partly, capsys):
    from weightwidget.cli import main

    assert partly.n_unlabelled == 100
    assert "(100 unlabelled)" in repr(partly)
    assert main(["show", partly.store_url]) == 0
    assert "100 unlabelled (never trained on)" in capsys.readouterr().out


# ---------------------------------------------------------------- label edits


@pytest.fixture
def animals(store_path):
    labels = ["cat", "dog", "cat", None, "dog", "cat", None, "cat"]
    return ww.WeightTable.from_arrays(
        labels=labels, name="animals", store=store_path, size=np.arange(8.0)
    )


def test_set_labels_is_a_revision_in_the_history(animals):
    rev = animals.set_labels([3], "dog")
    assert rev == 1 and animals.revision == 1
    assert animals.label_codes.tolist() == [0, 1, 0, 1, 1, 0, -1, 0]
    h = animals.history()
    assert h["action"].iloc[-1] == "labels"
    assert h["message"].iloc[-1] == "set label='dog' for row 3 (1 rows)"
    assert h["rows_changed"].iloc[-1] == 1
    animals.set_labels("label == 'cat' and size > 4", None, message="unsure")
    assert animals.history()["message"].iloc[-1] == "unsure"
    assert animals.label_codes.tolist() == [0, 1, 0, 1, 1, -1, -1, -1]
    assert animals.n_unlabelled == 3


def test_filters_masks_and_sorts_follow_label_edits(animals):
    assert animals.select("label == 'dog'").tolist() == [1, 4]
    animals.sort_order("label")
    animals.set_labels([0], "dog")
    assert animals.select("label == 'dog'").tolist() == [0, 1, 4]  # not a stale cache
    assert animals.count("label == 'cat'") == 3
    assert animals.sort_order("label").tolist()[:3] == [2, 5, 7]  # cats first
    assert animals.labels[0] == "dog"
    assert animals.df["label"].iloc[0] == "dog"


def test_set_labels_per_row_values_and_missing(animals):
    animals.set_labels([0, 1, 3], ["dog", None, "cat"])
    assert animals.label_codes[[0, 1, 3]].tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match="value has length 2, expected 3"):
        animals.set_labels([0, 1, 3], ["dog", "cat"])


def test_new_classes_are_refused_unless_allowed(animals):
    with pytest.raises(
        ValueError, match="label 'bird' is not a class of this table .*allow_new_classes=True"
    ):
        animals.set_labels([0], "bird")
    assert animals.revision == 0
    with pytest.raises(TypeError, match="holds text; got the label 3"):
        animals.set_labels([0], 3)


def test_new_classes_keep_classes_sorted_and_persist(animals, store_path):
    animals.set_labels([1], "zebra", allow_new_classes=True)
    animals.set_labels([0, 2], ["ant", "bird"], allow_new_classes=True)
    assert animals.classes.tolist() == ["ant", "bird", "cat", "dog", "zebra"]
    # cat moved from code 0 to 2: codes index the sorted classes
    assert animals.label_codes.tolist() == [0, 4, 1, -1, 3, 2, -1, 2]
    assert animals.labels.tolist()[:3] == ["ant", "zebra", "bird"]
    header = animals._store.header(2)
    assert header["classes_added"] == {"codes": [3, 4], "values": ["ant", "bird"]}
    got = run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        print(json.dumps([t.classes.tolist(), t.label_codes.tolist()]))
    """)
    assert got == [animals.classes.tolist(), animals.label_codes.tolist()]
    assert animals.count("label == 'zebra'") == 1
    cb = animals.class_balance()
    assert cb.index.tolist() == animals.classes.tolist()


def test_numeric_new_classes(store_path):
    t = ww.WeightTable.from_arrays(labels=[1, 2, 2, 5], store=store_path)
    with pytest.raises(ValueError, match="whole-number classes; got 2.5"):
        t.set_labels([0], 2.5, allow_new_classes=True)
    with pytest.raises(TypeError, match="holds numbers; got the label 'x'"):
        t.set_labels([0], "x")
    t.set_labels([0], 3.0, allow_new_classes=True)  # 3.0 is the class 3
    assert t.classes.tolist() == [1, 2, 3, 5] and t.classes.dtype.kind == "i"
    assert t.label_codes.tolist() == [2, 1, 1, 3]
    t.set_labels([3], None)
    assert np.isnan(t.column("label")[3])  # numbers with a missing one: float + NaN
    assert t.select("label == 3").tolist() == [0]


def test_a_class_stays_listed_after_its_rows_are_undone(animals):
    animals.set_labels([3], "bird", allow_new_classes=True)
    animals.undo()
    assert animals.classes.tolist() == ["bird", "cat", "dog"]
    assert animals.class_balance().loc["bird", "count"] == 0
    assert animals.label_codes[3] == -1


def test_undo_and_redo_label_edits(animals):
    before = animals.label_codes.copy()
    animals.set_labels([0, 3], "dog")
    animals.set_weights([5], 0.0)
    animals.undo()  # the weight edit
    animals.undo()  # the label edit
    np.testing.assert_array_equal(animals.label_codes, before)
    assert animals.history()["action"].tolist()[-2:] == ["undo", "undo"]
    animals.redo()
    assert animals.label_codes[[0, 3]].tolist() == [1, 1]
    assert animals.weights[5] == 1.0  # redo brings back the label edit only


def test_undo_of_a_label_edit_refuses_when_another_process_relabelled_those_rows(
    animals, store_path
):
    animals.set_labels([0, 1], "cat")
    run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r}, session="other")
        t.set_labels([1], None)
        t.set_weights([0], 4.0)  # a weight edit of row 0 does not touch its label
        print(json.dumps(t.revision))
    """)
    with pytest.raises(UndoConflictError, match="rows 1 were changed since by revision 2"):
        animals.undo()
    assert animals.revision == 3  # nothing committed, the other edits seen
    animals.undo(force=True)
    assert animals.label_codes[[0, 1]].tolist() == [0, 1]
    assert animals.weights[0] == 4.0


def test_undo_of_a_label_edit_keeps_other_processes_label_edits(animals, store_path):
    animals.set_labels([0], "dog")
    run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r}, session="other")
        t.set_labels([7], "dog")
        print(json.dumps(t.revision))
    """)
    animals.undo()
    assert animals.labels[0] == "cat" and animals.labels[7] == "dog"


def test_revert_restores_labels_and_reverting_to_now_commits_nothing(animals):
    animals.set_labels([0, 3], ["dog", "cat"])
    animals.set_weights([1], 3.0)
    rev = animals.revert(0)
    assert (
        animals.label_codes.tolist()
        == ww.WeightTable.open(animals.store_url, revision=0).label_codes.tolist()
    )
    assert (animals.weights == 1).all()
    with pytest.warns(NothingChangedWarning, match="no row would change"):
        assert animals.revert(rev) == rev
    assert animals.revision == rev


def test_diff_shows_label_changes(animals):
    animals.set_labels([0, 3], ["dog", "cat"])
    animals.set_weights([1], 3.0)
    d = animals.diff(0)
    assert d.index.tolist() == [0, 1, 3]
    assert d["label_a"].tolist()[0] == "cat" and d["label_b"].tolist()[0] == "dog"
    assert pd.isna(d.loc[3, "label_a"]) and d.loc[3, "label_b"] == "cat"
    assert d.loc[1, "weight_b"] == 3.0 and d.loc[1, "label_a"] == d.loc[1, "label_b"]
    assert d.attrs["labels_changed"] == 2 and d.attrs["weights_changed"] == 1
    only_weights = animals.diff(1, 2)
    assert only_weights.index.tolist() == [1] and only_weights.attrs["labels_changed"] == 0


def test_past_revisions_show_their_labels(animals, store_path):
    animals.set_labels([3], "fish", allow_new_classes=True)
    animals.set_labels([0], None)
    past = ww.WeightTable.open(store_path, revision=1)
    assert past.classes.tolist() == ["cat", "dog", "fish"]
    assert past.labels[3] == "fish" and past.labels[0] == "cat"
    first = ww.WeightTable.open(store_path, revision=0)
    assert first.classes.tolist() == ["cat", "dog"] and first.n_unlabelled == 2
    with pytest.raises(ReadOnlyTableError):
        past.set_labels([1], "cat")
    assert pd.Series(animals.labels_at(1)).equals(pd.Series(past.labels))


def test_another_process_sees_label_edits_and_its_edits_are_seen(animals, store_path):
    animals.set_labels([3, 6], ["cat", "dog"])
    got = run_json(f"""
        import json, weightwidget as ww
        t = ww.WeightTable.open({store_path!r})
        out = [t.label_codes.tolist(), t.n_unlabelled]
        t.set_labels([0], "horse", allow_new_classes=True)
        print(json.dumps(out))
    """)
    assert got == [animals.label_codes.tolist(), 0]
    animals.latest()
    assert animals.classes.tolist() == ["cat", "dog", "horse"]
    assert animals.labels[0] == "horse"
    assert animals.select("label == 'horse'").tolist() == [0]


def test_label_edits_survive_snapshots_and_long_histories(store_path):
    rng = np.random.default_rng(3)
    n = 3000
    t = ww.WeightTable.from_arrays(labels=rng.integers(0, 3, n), store=store_path)
    expected = t.label_codes.astype(np.int64)
    for i in range(40):
        rows = rng.choice(n, size=int(rng.integers(1, 1500)), replace=False)
        value = None if i % 5 == 0 else int(rng.integers(0, 3))
        t.set_labels(rows, value)
        expected[rows] = -1 if value is None else value
        if i % 7 == 0:
            t.set_weights(rows[:10], 2.0)
    np.testing.assert_array_equal(t.label_codes, expected)
    assert max(t._store.snapshot_numbers()) > 0  # snapshots were written, labels in them
    reopened = ww.WeightTable.open(store_path)
    np.testing.assert_array_equal(reopened.label_codes, expected)


def test_live_sampler_never_draws_a_row_unlabelled_at_the_last_revision(store_path):
    pytest.importorskip("torch")
    t = ww.WeightTable.from_arrays(labels=np.arange(20) % 2, store=store_path)
    sampler = t.create_sampler(num_samples=2000, seed=0, live=True)
    first = np.array(list(sampler))
    assert np.isin(np.arange(10), first).all()
    other = ww.WeightTable.open(store_path)  # another handle: the sampler must refresh
    other.set_labels(np.arange(10), None)
    sampler.set_epoch(1)
    drawn = np.array(list(sampler))
    assert not np.isin(np.arange(10), drawn).any()
    assert np.isin(np.arange(10, 20), drawn).all()


def test_set_labels_validates_before_committing(animals):
    with pytest.raises(TypeError, match="allow_new_classes must be True or False"):
        animals.set_labels([0], "cat", allow_new_classes="yes")
    with pytest.raises(ValueError, match="row id 99 is out of range"):
        animals.set_labels([99], "cat")
    with pytest.raises(TypeError, match="message must be a string"):
        animals.set_labels([0], "cat", message=3)
    assert animals.revision == 0


# ---------------------------------------------------------------- property test

edits = st.lists(
    st.one_of(
        st.tuples(
            st.just("label"),
            st.lists(st.integers(0, 11), min_size=1, max_size=6, unique=True),
            st.sampled_from([None, "a", "b", "c"]),
        ),
        st.tuples(
            st.just("weight"),
            st.lists(st.integers(0, 11), min_size=1, max_size=6, unique=True),
            st.sampled_from([0.0, 0.5, 2.0]),
        ),
        st.tuples(st.just("undo"), st.just([]), st.none()),
        st.tuples(st.just("redo"), st.just([]), st.none()),
    ),
    max_size=12,
)


# a quarter of the profile's examples: each builds a store (ci: 25, thorough: 1250)
@settings(max_examples=max(10, settings().max_examples // 4))
@given(edits)
def test_label_and_weight_edits_with_undo_redo_match_a_plain_model(tmp_path_factory, ops):
    """One session: undo restores exactly the rows of its own edit, redo re-applies them."""
    store = str(tmp_path_factory.mktemp("prop") / "s")
    labels = ["a", "b", "c"] * 4
    t = ww.WeightTable.from_arrays(labels=labels, store=store)
    code = {"a": 0, "b": 1, "c": 2, None: -1}
    lab = np.array([code[v] for v in labels])
    w = np.ones(12)
    done: list[tuple[str, list[int], np.ndarray]] = []  # undo stack: (field, rows, before)
    undone: list[tuple[str, list[int], np.ndarray]] = []
    for kind, rows, value in ops:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NothingChangedWarning)
            if kind == "label":
                before = lab[rows].copy()
                t.set_labels(rows, value)
                lab[rows] = code[value]
                if (before != lab[rows]).any():
                    done.append(("label", rows, before))
                    undone.clear()
            elif kind == "weight":
                before = w[rows].copy()
                t.set_weights(rows, value)
                w[rows] = value
                if (before != w[rows]).any():
                    done.append(("weight", rows, before))
                    undone.clear()
            elif kind == "undo":
                if not done:
                    assert not t.can_undo
                    continue
                field, r, before = done.pop()
                t.undo()
                arr = lab if field == "label" else w
                undone.append((field, r, arr[r].copy()))
                arr[r] = before
            else:
                if not undone:
                    assert not t.can_redo
                    continue
                field, r, after = undone.pop()
                t.redo()
                arr = lab if field == "label" else w
                done.append((field, r, arr[r].copy()))
                arr[r] = after
        np.testing.assert_array_equal(t.label_codes, lab)
        np.testing.assert_array_equal(t.weights, w)
    reopened = ww.WeightTable.open(store)
    np.testing.assert_array_equal(reopened.label_codes, lab)


def test_collect_metrics_on_a_partly_labelled_table(partly):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=len(partly))
    m = ww.collect_metrics(partly, probs, run="r1")
    unl = partly.label_codes < 0
    assert m["rows"] == int((~unl).sum())
    loss = partly.column("r1_loss")
    assert np.isnan(loss[unl]).all() and np.isfinite(loss[~unl]).all()
    assert np.isfinite(partly.column("r1_confidence")).all()  # predictions of every row
    codes = partly.label_codes[~unl]
    expected = -np.log(probs[~unl][np.arange(codes.size), codes]).mean()
    assert m["loss"] == pytest.approx(expected)


def test_a_class_another_process_added_is_known_without_latest(animals, store_path):
    other = ww.WeightTable.open(store_path, session="other")
    other.set_labels([3], "owl", allow_new_classes=True)
    animals.set_labels([6], "owl")  # no allow_new_classes: owl is a class by now
    assert animals.labels[3] == "owl" and animals.labels[6] == "owl"
    assert animals.classes.tolist() == ["cat", "dog", "owl"]
