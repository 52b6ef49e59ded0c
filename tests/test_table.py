"""WeightTable: constructors, selection, edits, balance, summaries and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import weightwidget as ww
from weightwidget.errors import FilterError, StoreExistsError, StoreMismatchError

# ---------------------------------------------------------------- constructors


def test_from_pandas_starts_at_weight_one(table, frame):
    assert table.revision == 0
    assert table.weights.dtype == np.float64
    np.testing.assert_array_equal(table.weights, np.ones(len(frame)))
    assert table.columns == ["label", "loss", "caption", "flagged"]
    assert table.label == "label"
    assert table.classes.tolist() == [0, 1, 2, 3, 4]
    df = table.df
    assert list(df.columns) == ["label", "loss", "caption", "flagged", "weight"]
    assert df.index.name == "row"
    pd.testing.assert_series_equal(df["loss"], frame["loss"], check_names=False, check_index=False)


def test_weights_are_read_only_and_a_snapshot(table):
    w = table.weights
    with pytest.raises(ValueError, match="read-only"):
        w[0] = 5.0
    table.set_weights([0], 5.0)
    assert w[0] == 1.0  # the earlier array is not changed under the user
    assert table.weights[0] == 5.0


def test_from_arrays_with_extra_columns_and_string_labels(store_path):
    labels = np.array(["cat", "dog", "cat", "bird"])
    t = ww.WeightTable.from_arrays(
        labels=labels,
        name="a",
        store=store_path,
        loss=[0.1, 0.2, 0.3, 0.4],
        caption=["a", "b", "c", "d"],
    )
    assert t.classes.tolist() == ["bird", "cat", "dog"]
    assert t.label_codes.tolist() == [1, 2, 1, 0]
    assert t.column_kind("caption") == "string"
    assert t.column_kind("loss") == "numeric"
    assert t.select("label == 'cat'").tolist() == [0, 2]
    t.balance("balanced")
    # n / (k * n_c): 4 / (3 * 2) for cat, 4 / 3 for the others
    np.testing.assert_allclose(t.weights, [4 / 6, 4 / 3, 4 / 6, 4 / 3])


def test_categorical_labels_and_image_columns(store_path):
    images = np.arange(4 * 8 * 8, dtype=np.float64).reshape(4, 8, 8)
    df = pd.DataFrame({"label": pd.Categorical(["x", "y", "x", "y"]), "image": list(images)})
    t = ww.WeightTable.from_pandas(df, label="label", name="img", store=store_path)
    assert t.column_kind("image") == "image"
    np.testing.assert_array_equal(t.column("image"), images)
    t2 = ww.WeightTable.open(store_path)
    np.testing.assert_array_equal(t2.column("image"), images)
    assert t2.classes.tolist() == ["x", "y"]
    with pytest.raises(FilterError, match="holds images"):
        t.mask("image > 1")


def test_starting_weights_column(store_path):
    df = pd.DataFrame({"label": [0, 1, 1], "w0": [0.5, 0.0, 2.0]})
    t = ww.WeightTable.from_pandas(df, label="label", weights="w0", store=store_path)
    np.testing.assert_array_equal(t.weights, [0.5, 0.0, 2.0])
    assert "w0" not in t.columns


def test_unnamed_tables_get_a_name_from_their_data(tmp_path, monkeypatch, frame):
    monkeypatch.chdir(tmp_path)
    t = ww.WeightTable.from_pandas(frame, label="label")
    assert t.name.startswith("table-")
    assert (tmp_path / ".weightwidget" / t.name / "meta.json").exists()


def test_default_store_is_a_visible_local_folder(tmp_path, monkeypatch, frame):
    monkeypatch.chdir(tmp_path)
    t = ww.WeightTable.from_pandas(frame, label="label", name="digits")
    assert (tmp_path / ".weightwidget" / "digits" / "meta.json").exists()
    assert t.store_url == str(tmp_path / ".weightwidget" / "digits")


# ---------------------------------------------------------------- where


def test_where_accepts_every_documented_form(table, frame):
    n = len(frame)
    by_filter = table.select("label == 3")
    np.testing.assert_array_equal(by_filter, np.flatnonzero(frame["label"] == 3))
    np.testing.assert_array_equal(table.select((frame["label"] == 3).to_numpy()), by_filter)
    np.testing.assert_array_equal(table.select(frame["label"] == 3), by_filter)
    np.testing.assert_array_equal(table.select(list(by_filter)), by_filter)
    np.testing.assert_array_equal(table.select(slice(10, 20)), np.arange(10, 20))
    np.testing.assert_array_equal(table.select(None), np.arange(n))
    assert table.select(7).tolist() == [7]
    assert table.count("label == 3") == len(by_filter)


def test_filters_can_use_weight_and_row(table):
    table.set_weights(slice(0, 10), 0)
    assert table.select("weight == 0").tolist() == list(range(10))
    assert table.select("row < 3").tolist() == [0, 1, 2]


BAD_WHERE = [
    (np.ones(5, dtype=bool), ValueError, "boolean mask has length 5, expected 1000"),
    ([0, 1000], ValueError, "row id 1000 is out of range: row ids run from 0 to 999"),
    ([-1], ValueError, "row id -1 is out of range"),
    ([1, 1], ValueError, "duplicates"),
    ("labl == 3", FilterError, "did you mean 'label'"),
    ("label ==", FilterError, "at position 8"),
    ({"a": 1}, TypeError, "where must be a filter string"),
    ([0.5], TypeError, "where must be a filter string"),
]


@pytest.mark.parametrize(("where", "error", "match"), BAD_WHERE)
def test_bad_where_is_a_clear_error_and_changes_nothing(table, where, error, match):
    before = table.weights.copy()
    with pytest.raises(error, match=match):
        table.set_weights(where, 0.0)
    np.testing.assert_array_equal(table.weights, before)
    assert table.revision == 0
    assert len(table.history()) == 1


# ---------------------------------------------------------------- edits


def test_set_weights_makes_one_revision_with_a_readable_message(table, frame):
    n3 = int((frame["label"] == 3).sum())
    rev = table.set_weights("label == 3", 0)
    assert rev == table.revision == 1
    assert (table.weights[frame["label"] == 3] == 0).all()
    assert (table.weights[frame["label"] != 3] == 1).all()
    hist = table.history()
    assert hist["message"].iloc[-1] == f"set weight=0 where label == 3 ({n3} rows)"
    assert hist["rows_changed"].iloc[-1] == n3
    assert hist["parent"].iloc[-1] == 0


def test_set_weights_with_one_value_per_row(table):
    table.set_weights([5, 2, 9], [0.5, 2.0, 3.0])
    assert table.weights[[5, 2, 9]].tolist() == [0.5, 2.0, 3.0]
    table.set_weights(slice(0, 3), np.array([4.0, 5.0, 6.0]), message="by hand")
    assert table.weights[:3].tolist() == [4.0, 5.0, 6.0]
    assert table.history()["message"].iloc[-1] == "by hand"


def test_scale_weights(table, frame):
    table.scale_weights("loss > 2", 3.0)
    expected = np.where(frame["loss"] > 2, 3.0, 1.0)
    np.testing.assert_array_equal(table.weights, expected)
    assert "multiply weight by 3 where loss > 2" in table.history()["message"].iloc[-1]


BAD_VALUES = [
    (np.nan, "must be finite and >= 0; got nan"),
    (-1.0, "got -1.0"),
    (np.inf, "got inf"),
    ([1.0, np.nan, 2.0], "at position 1"),
    ([1.0, 2.0], "value has length 2, expected 3"),
    ("heavy", "must be numbers"),
]


@pytest.mark.parametrize(("value", "match"), BAD_VALUES)
def test_bad_weights_are_rejected_and_change_nothing(table, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        table.set_weights([0, 1, 2], value)
    np.testing.assert_array_equal(table.weights, np.ones(len(table)))
    assert table.revision == 0


def test_scaling_into_overflow_is_rejected(table):
    table.set_weights([0], 1e300)
    with pytest.raises(ValueError, match="scaled weights must be finite"):
        table.scale_weights([0], 1e10)
    assert table.weights[0] == 1e300


# ---------------------------------------------------------------- balance


@pytest.mark.parametrize(
    ("strategy", "formula"),
    [
        ("inverse_frequency", lambda n, k, c: n / c),
        ("sqrt_inverse_frequency", lambda n, k, c: np.sqrt(n / c)),
        ("balanced", lambda n, k, c: n / (k * c)),
    ],
)
def test_balance_strategies_follow_their_formulas(table, strategy, formula):
    table.balance(strategy)
    counts = np.bincount(table.label_codes)
    n, k = counts.sum(), len(counts)
    expected = formula(n, k, counts)[table.label_codes]
    np.testing.assert_allclose(table.weights, expected)
    if strategy != "sqrt_inverse_frequency":
        shares = table.class_balance()["effective_share"].to_numpy()
        np.testing.assert_allclose(shares, 1 / k)  # equal total weight per class


def test_balanced_matches_scikit_learn(table):
    from sklearn.utils.class_weight import compute_class_weight

    table.balance("balanced")
    y = table.labels
    cw = compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_allclose(table.weights, cw[table.label_codes])


def test_effective_number_follows_cui_et_al(table):
    beta = 0.99
    table.balance("effective_number", beta=beta)
    counts = np.bincount(table.label_codes)
    raw = (1 - beta) / (1 - beta**counts)
    expected = raw / raw.sum() * len(counts)
    np.testing.assert_allclose(table.weights, expected[table.label_codes])


def test_balance_keeps_existing_zeros_excluded(table, frame):
    table.set_weights("flagged", 0)
    table.balance("balanced")
    assert (table.weights[frame["flagged"]] == 0).all()
    included = ~frame["flagged"].to_numpy()
    codes = table.label_codes[included]
    counts = np.bincount(codes)
    expected = included.sum() / (len(counts) * counts)
    np.testing.assert_allclose(table.weights[included], expected[codes])


def test_balance_within_a_filter_only_touches_those_rows(table, frame):
    table.balance("balanced", where="label in [3, 4]")
    outside = ~frame["label"].isin([3, 4]).to_numpy()
    assert (table.weights[outside] == 1).all()
    sums = table.class_balance()["weight_sum"]
    assert sums.loc[3] == pytest.approx(sums.loc[4])


def test_balance_errors(table):
    with pytest.raises(ValueError, match="strategy must be one of .*did you mean 'balanced'"):
        table.balance("balance")
    with pytest.raises(ValueError, match="beta must be in"):
        table.balance("effective_number", beta=1.0)
    table.set_weights("label == 4", 0)
    with pytest.raises(ValueError, match="nothing to balance"):
        table.balance(where="label == 4")


# ---------------------------------------------------------------- history


def test_undo_redo_are_revisions(table):
    table.set_weights("label == 0", 0)
    table.set_weights("label == 1", 2)
    after = table.weights.copy()
    table.undo()
    assert (table.weights[table.labels == 1] == 1).all()
    assert (table.weights[table.labels == 0] == 0).all()
    table.undo()
    np.testing.assert_array_equal(table.weights, np.ones(len(table)))
    with pytest.raises(ValueError, match="nothing to undo"):
        table.undo()
    table.redo()
    table.redo()
    np.testing.assert_array_equal(table.weights, after)
    with pytest.raises(ValueError, match="nothing to redo"):
        table.redo()
    messages = table.history()["message"].tolist()
    assert messages[-1].startswith("redo: set weight=2")
    assert messages[3].startswith("undo: set weight=2")


def test_a_new_edit_clears_redo(table):
    table.set_weights([0], 0)
    table.undo()
    table.set_weights([1], 0)
    assert not table.can_redo
    with pytest.raises(ValueError, match="nothing to redo"):
        table.redo()


def test_revert_and_diff(table):
    table.set_weights("label == 0", 0)
    table.scale_weights("label == 1", 2)
    d = table.diff(0, 2)
    changed = np.flatnonzero(table.labels <= 1)
    assert d.index.tolist() == changed.tolist()
    assert set(d["weight_a"]) == {1.0}
    rev = table.revert(0)
    assert rev == 3
    np.testing.assert_array_equal(table.weights, np.ones(len(table)))
    assert table.history()["message"].iloc[-1].startswith("revert to revision 0")
    np.testing.assert_array_equal(table.weights_at(1)[table.labels == 0], 0)
    with pytest.raises(ValueError, match="revision 99 does not exist"):
        table.revert(99)


# ---------------------------------------------------------------- summaries


def test_class_balance(table, frame):
    table.set_weights("label == 0", 0.5)
    table.set_weights("label == 4", 0)
    cb = table.class_balance(num_samples=1000)
    counts = frame["label"].value_counts().sort_index()
    assert cb["count"].tolist() == counts.tolist()
    assert cb.loc[4, "included"] == 0
    w = table.weights
    total = w.sum()
    for c in range(5):
        assert cb.loc[c, "weight_sum"] == pytest.approx(w[frame["label"] == c].sum())
        assert cb.loc[c, "effective_share"] == pytest.approx(w[frame["label"] == c].sum() / total)
    assert cb["expected_draws"].sum() == pytest.approx(1000)
    assert cb["share"].sum() == pytest.approx(1.0)
    default = table.class_balance()
    assert default["expected_draws"].sum() == pytest.approx((w > 0).sum())


def test_all_zero_weights_have_no_distribution(table):
    table.set_weights(None, 0)
    with pytest.raises(ValueError, match="all weights are 0"):
        table.class_balance()
    table.set_weights(None, 1)
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        table.class_balance(num_samples=0)


def test_plot_balance_draws_raw_and_effective_bars(table):
    import matplotlib.pyplot as plt

    table.balance("balanced")
    fig, ax = plt.subplots()
    out = table.plot_balance(ax=ax, compare_to=0)
    assert out is ax
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["raw share", "effective, revision 0", "effective, revision 1"]
    bars = ax.containers
    heights = [np.array([b.get_height() for b in c]) for c in bars]
    np.testing.assert_allclose(heights[0], table.class_balance()["share"])
    np.testing.assert_allclose(heights[1], table.class_balance()["share"])  # rev 0: all ones
    np.testing.assert_allclose(heights[2], 0.2)
    plt.close(fig)
    ax2 = table.plot_balance()
    assert len(ax2.containers) == 2
    plt.close("all")


# ---------------------------------------------------------------- bad input


def test_empty_table_is_refused(store_path):
    with pytest.raises(ValueError, match="the table is empty"):
        ww.WeightTable.from_arrays(labels=[], store=store_path)


def test_unknown_label_column_lists_known_ones(frame, store_path):
    with pytest.raises(ValueError, match="unknown column 'lable' \\(did you mean 'label'\\?\\)"):
        ww.WeightTable.from_pandas(frame, label="lable", store=store_path)


def test_wrong_length_columns(store_path):
    with pytest.raises(ValueError, match="column 'loss' has 2 rows but 'label' has 3"):
        ww.WeightTable.from_arrays(labels=[0, 1, 2], loss=[0.1, 0.2], store=store_path)


def test_missing_labels_make_unlabelled_rows(store_path):
    # (refused before issue 13; tests/test_labels.py covers them in depth)
    t = ww.WeightTable.from_arrays(labels=[0.0, np.nan, 1.0], store=store_path)
    assert t.label_codes.tolist() == [0, -1, 1] and t.n_unlabelled == 1
    t = ww.WeightTable.from_arrays(labels=["a", None, "b"], store=store_path, if_exists="overwrite")
    assert t.classes.tolist() == ["a", "b"] and t.label_codes.tolist() == [0, -1, 1]


def test_reserved_column_names(store_path):
    df = pd.DataFrame({"label": [0, 1], "weight": [1.0, 2.0]})
    with pytest.raises(ValueError, match="reserved .* weights='weight'"):
        ww.WeightTable.from_pandas(df, label="label", store=store_path)


def test_bad_starting_weights(store_path):
    with pytest.raises(ValueError, match="starting weights must be finite"):
        ww.WeightTable.from_arrays(labels=[0, 1], weights=[1.0, -2.0], store=store_path)
    with pytest.raises(ValueError, match="weights has length 1, expected 2"):
        ww.WeightTable.from_arrays(labels=[0, 1], weights=[1.0], store=store_path)


def test_bad_names_and_options(frame, store_path):
    with pytest.raises(ValueError, match="name must be"):
        ww.WeightTable.from_pandas(frame, label="label", name="../escape")
    with pytest.raises(ValueError, match="if_exists must be one of"):
        ww.WeightTable.from_pandas(frame, label="label", store=store_path, if_exists="keep")
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        ww.WeightTable.from_pandas({"label": [1]}, label="label")


def test_unknown_column_lookup(table):
    with pytest.raises(KeyError, match="did you mean 'loss'"):
        table.column("los")


# ---------------------------------------------------------------- re-running a cell


def test_rerunning_the_cell_reopens_the_curated_weights(frame, store_path):
    t = ww.WeightTable.from_pandas(frame, label="label", name="d", store=store_path)
    t.set_weights("label == 2", 0)
    again = ww.WeightTable.from_pandas(frame, label="label", name="d", store=store_path)
    assert again.revision == 1
    np.testing.assert_array_equal(again.weights, t.weights)


def test_if_exists_overwrite_and_error(frame, store_path):
    t = ww.WeightTable.from_pandas(frame, label="label", store=store_path)
    t.set_weights("label == 2", 0)
    fresh = ww.WeightTable.from_pandas(
        frame, label="label", store=store_path, if_exists="overwrite"
    )
    assert fresh.revision == 0 and (fresh.weights == 1).all()
    assert len(ww.WeightTable.open(store_path).history()) == 1
    with pytest.raises(StoreExistsError, match="if_exists='reuse'"):
        ww.WeightTable.from_pandas(frame, label="label", store=store_path, if_exists="error")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda df: df.iloc[:-1], "it has 1000 rows, the data given has 999"),
        (lambda df: df.assign(extra=1.0), "new columns 'extra'"),
        (lambda df: df.drop(columns="flagged"), "columns missing from the data: 'flagged'"),
        (lambda df: df.assign(loss=df["loss"] + 1), "values of column\\(s\\) 'loss' differ"),
    ],
)
def test_different_data_under_the_same_name_says_what_differs(frame, store_path, change, match):
    ww.WeightTable.from_pandas(frame, label="label", name="d", store=store_path)
    with pytest.raises(StoreMismatchError, match=match):
        ww.WeightTable.from_pandas(change(frame), label="label", name="d", store=store_path)


# ---------------------------------------------------------------- torch datasets


class _ItemsOnly:
    """A map-style dataset without a targets attribute."""

    def __init__(self, labels):
        self._labels = labels

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, i):
        import torch

        return torch.zeros(2), torch.tensor(self._labels[i])


def test_from_torch_dataset_reads_targets(store_path):
    import torch
    from torch.utils.data import ConcatDataset, Subset, TensorDataset

    class WithTargets(TensorDataset):
        def __init__(self, y):
            super().__init__(torch.zeros(len(y), 2), torch.as_tensor(y))
            self.targets = torch.as_tensor(y)

        def __getitem__(self, i):  # reading items would be a bug: the attribute is enough
            raise AssertionError("items were read although .targets exists")

    ds = WithTargets([0, 1, 1, 2])
    t = ww.WeightTable.from_torch_dataset(ds, store=store_path)
    assert t.labels.tolist() == [0, 1, 1, 2]
    sub = Subset(ds, [3, 0])
    t2 = ww.WeightTable.from_torch_dataset(sub, store=store_path + "2")
    assert t2.labels.tolist() == [2, 0]
    cat = ConcatDataset([ds, sub])
    t3 = ww.WeightTable.from_torch_dataset(cat, store=store_path + "3")
    assert t3.labels.tolist() == [0, 1, 1, 2, 2, 0]


def test_from_torch_dataset_iterates_with_progress(store_path, capsys):
    from torch.utils.data import ConcatDataset, Subset

    ds = _ItemsOnly([3, 1, 4, 1, 5])
    t = ww.WeightTable.from_torch_dataset(ds, store=store_path)
    assert t.labels.tolist() == [3, 1, 4, 1, 5]
    assert "reading labels" in capsys.readouterr().err  # the tqdm bar
    both = ConcatDataset([Subset(ds, [0, 4]), ds])
    t2 = ww.WeightTable.from_torch_dataset(both, store=store_path + "2", progress=False)
    assert t2.labels.tolist() == [3, 5, 3, 1, 4, 1, 5]


def test_from_torch_dataset_with_label_fn(store_path):
    data = [{"x": i, "y": i % 2} for i in range(6)]

    class Dicts:
        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i]

    t = ww.WeightTable.from_torch_dataset(
        Dicts(), store=store_path, label_fn=lambda item: item["y"], progress=False
    )
    assert t.labels.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(TypeError, match="pass label_fn="):
        ww.WeightTable.from_torch_dataset(Dicts(), store=store_path + "x", progress=False)


def test_the_table_keeps_its_own_copy_of_the_data(store_path):
    df = pd.DataFrame({"label": [0, 1, 0], "loss": [1.0, 2.0, 3.0]})
    arr = np.array([0.5, 0.6, 0.7])
    t = ww.WeightTable.from_pandas(df, label="label", store=store_path)
    t2 = ww.WeightTable.from_arrays(labels=[0, 1, 1], extra=arr, store=store_path + "2")
    df.loc[0, "loss"] = 99.0
    df.loc[0, "label"] = 5
    arr[0] = -1
    assert t.column("loss").tolist() == [1.0, 2.0, 3.0]
    assert t.labels.tolist() == [0, 1, 0]
    assert t2.column("extra")[0] == 0.5


def test_subscribers_see_undo_and_redo_state_after_the_change(table):
    seen = []
    table.subscribe(lambda t: seen.append((t.revision, t.can_undo, t.can_redo)))
    table.set_weights([0], 0)
    table.undo()
    table.redo()
    assert seen == [(1, True, False), (2, False, True), (3, True, False)]


def test_edits_from_threads_all_land(table):
    import threading

    def work(i):
        for _ in range(10):
            table.scale_weights([i], 2.0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert table.revision == 40
    assert table.weights[:4].tolist() == [1024.0] * 4
