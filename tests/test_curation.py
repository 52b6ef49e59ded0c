"""Curation help (weightwidget.curation): label issues from out-of-fold probabilities."""

from __future__ import annotations

import sys
import uuid
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

import weightwidget as ww
from weightwidget.curation import find_label_issues, label_issue_columns, out_of_fold

from .conftest import run_json

cleanlab_filter = pytest.importorskip("cleanlab.filter")
cleanlab_rank = pytest.importorskip("cleanlab.rank")

N, K, D = 1500, 5, 8


def blobs(seed=0, n=N, k=K, flip=0.10):
    """Separable-ish Gaussian blobs with a known fraction of labels flipped."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.5, size=(k, D))
    truth = rng.integers(0, k, size=n)
    x = centers[truth] + rng.normal(size=(n, D))
    flipped = rng.random(n) < flip
    noisy = truth.copy()
    noisy[flipped] = (truth[flipped] + rng.integers(1, k, size=flipped.sum())) % k
    return x, truth, noisy, flipped


def oof(x, codes, rows=None, weights=None):
    rows = np.arange(len(codes)) if rows is None else rows
    probs = np.full((len(codes), int(codes.max()) + 1), np.nan)
    probs[rows] = cross_val_predict(
        LogisticRegression(max_iter=1000),
        x[rows],
        codes[rows],
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
        params=None if weights is None else {"sample_weight": weights[rows]},
    )
    return probs


@pytest.fixture(scope="module")
def data():
    x, truth, noisy, flipped = blobs()
    return x, truth, noisy, flipped, oof(x, noisy)


@pytest.fixture
def t(data, tmp_path):
    return ww.WeightTable.from_arrays(labels=data[2], name="c", store=str(tmp_path / "c"))


# ------------------------------------------------------------------ acceptance


def test_flags_the_flipped_rows(t, data):
    _, _, noisy, flipped, probs = data
    out = ww.find_label_issues(t, probs, run="r1")
    flag = t.column("r1_label_issue")
    assert flag.dtype == bool
    precision, recall = flipped[flag].mean(), flag[flipped].mean()
    assert precision >= 0.8 and recall >= 0.7, (precision, recall)
    # the same detection cleanlab makes when called directly: we do not reimplement it
    direct = cleanlab_filter.find_label_issues(noisy, probs, n_jobs=1)
    np.testing.assert_array_equal(flag, direct)
    quality = cleanlab_rank.get_label_quality_scores(noisy, probs)
    np.testing.assert_allclose(t.column("r1_label_quality"), quality)
    np.testing.assert_array_equal(t.column("r1_suggested_label"), probs.argmax(1))
    # the returned frame: the flagged rows, worst first
    assert list(out.columns) == ["label", "suggested_label", "quality", "weight"]
    assert out.index.name == "row"
    assert sorted(out.index) == list(np.flatnonzero(flag))
    assert out["quality"].is_monotonic_increasing
    np.testing.assert_array_equal(out["label"], noisy[out.index])
    np.testing.assert_array_equal(out["suggested_label"], probs[out.index].argmax(1))
    np.testing.assert_allclose(out["quality"], quality[out.index])
    assert (out["weight"] == 1.0).all()
    assert out.attrs["columns"] == list(label_issue_columns("r1").values())
    # filters see the columns
    assert t.count("r1_label_issue") == flag.sum()
    assert t.count("r1_label_issue and r1_label_quality < 0.05") == ((quality < 0.05) & flag).sum()


def test_columns_persist_and_another_process_sees_the_run(t, data):
    probs = data[4]
    t.set_weights("label == 0", 2.0, message="up-weight class 0")
    before = t.revision
    out = ww.find_label_issues(t, probs, run="li")
    runs = t.runs()
    assert list(runs["run"]) == ["li"]
    row = runs.iloc[0]
    assert row["revision"] == before and row["kind"] == "label_issues"
    assert row["committed"] == out.attrs["revision"] == t.revision == before + 1
    np.testing.assert_array_equal(t.weights_at(t.revision), t.weights_at(before))  # columns only
    assert row["columns"] == ["li_label_issue", "li_label_quality", "li_suggested_label"]
    agg = row["aggregates"]
    assert agg["flagged"] == len(out) and agg["rows"] == N
    assert agg["fraction"] == pytest.approx(len(out) / N)
    w = t.weights
    assert agg["weighted_fraction"] == pytest.approx(w[out.index].sum() / w.sum())
    per_class = pd.Series(t.labels[out.index]).value_counts()
    assert agg["per_class"] == {str(c): int(per_class.get(c, 0)) for c in range(K)}
    assert (out["weight"][out["label"] == 0] == 2.0).all()

    got = run_json(
        f"""
        import json
        import weightwidget as ww
        t = ww.WeightTable.open({t.store_url!r})
        r = t.runs().iloc[-1]
        print(json.dumps({{
            "flags": [int(i) for i in t.select("li_label_issue")],
            "quality": t.column("li_label_quality").tolist(),
            "suggested": t.column("li_suggested_label").tolist(),
            "run": r["run"], "revision": int(r["revision"]), "kind": r["kind"],
            "flagged": r["aggregates"]["flagged"],
        }}))
        """
    )
    assert got["flags"] == sorted(out.index.tolist())
    np.testing.assert_allclose(got["quality"], t.column("li_label_quality"))
    assert got["suggested"] == t.column("li_suggested_label").tolist()
    assert (got["run"], got["revision"], got["kind"], got["flagged"]) == (
        "li",
        before,
        "label_issues",
        len(out),
    )


def test_runs_lists_metrics_and_label_issues_in_order(t, data):
    probs = data[4]
    m = ww.collect_metrics(t, probs, run="m1")
    t.set_weights("m1_correct == 0", 0.5, message="down-weight the misclassified")
    rev = t.revision
    ww.find_label_issues(t, probs, run="li1")
    runs = t.runs()
    assert list(runs["run"]) == ["m1", "li1"]
    assert list(runs["kind"]) == ["metrics", "label_issues"]
    assert list(runs["revision"]) == [0, rev]
    metrics = runs.iloc[0]["aggregates"]
    assert metrics["accuracy"] == pytest.approx(m["accuracy"])
    assert metrics["loss"] == pytest.approx(m["loss"])
    assert metrics["per_class_recall"] == {
        str(c): pytest.approx(v) for c, v in m["per_class_recall"].items()
    }
    assert runs.iloc[0]["columns"] == m["columns"]
    assert runs["created"].is_monotonic_increasing
    other = run_json(
        f"""
        import json
        import weightwidget as ww
        r = ww.WeightTable.open({t.store_url!r}).runs()
        print(json.dumps([r["run"].tolist(), r["kind"].tolist(), r["revision"].tolist()]))
        """
    )
    assert other == [["m1", "li1"], ["metrics", "label_issues"], [0, rev]]


# ------------------------------------------------------------------ where, inputs


def test_where_restricts_the_check(t, data):
    _, _, noisy, _, probs = data
    where = "label <= 2"
    rows = np.flatnonzero(noisy <= 2)
    with pytest.warns(UserWarning):  # cleanlab: "too few examples" of the absent classes
        out = ww.find_label_issues(t, probs, run="w", where=where)
    assert set(out.index) <= set(rows)
    outside = np.setdiff1d(np.arange(N), rows)
    assert not t.column("w_label_issue")[outside].any()
    assert np.isnan(t.column("w_label_quality")[outside]).all()
    assert np.isnan(t.column("w_suggested_label")[outside]).all()
    np.testing.assert_array_equal(t.column("w_suggested_label")[rows], probs[rows].argmax(1))
    # the estimate uses the selected rows only, as cleanlab on that subset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab: "too few examples" of absent classes
        direct = cleanlab_filter.find_label_issues(noisy[rows], probs[rows], n_jobs=1)
    np.testing.assert_array_equal(t.column("w_label_issue")[rows], direct)
    assert t.runs().iloc[-1]["aggregates"]["rows"] == rows.size
    # probabilities of the selected rows only, in row order, give the same result;
    # rows left out may hold NaN (e.g. not covered by out_of_fold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = ww.find_label_issues(t, probs[rows], run="w2", where=noisy <= 2)
        holes = np.where((noisy <= 2)[:, None], probs, np.nan)
        third = ww.find_label_issues(t, holes, run="w3", where=rows)
    pd.testing.assert_frame_equal(again, out)
    pd.testing.assert_frame_equal(third, out)


def test_dataframe_columns_are_matched_by_class_name(tmp_path):
    x, _, noisy, flipped = blobs(seed=3, n=600, k=3)
    names = np.array(["cat", "dog", "emu"])
    t = ww.WeightTable.from_arrays(labels=names[noisy], name="s", store=str(tmp_path / "s"))
    probs = oof(x, noisy)
    frame = pd.DataFrame(probs, columns=names)[["emu", "cat", "dog"]]  # any column order
    out = ww.find_label_issues(t, frame, run="df")
    ref = ww.find_label_issues(t, probs, run="arr")
    np.testing.assert_array_equal(out.index, ref.index)
    assert set(out["label"]) <= set(names) and set(out["suggested_label"]) <= set(names)
    assert (out["label"] != out["suggested_label"]).all()
    suggested = t.column("df_suggested_label")
    assert list(np.asarray(suggested)[:5]) == list(names[probs[:5].argmax(1)])
    assert flipped[out.index].mean() >= 0.8
    # text classes with where: rows left out have a missing suggestion
    ww.find_label_issues(t, frame, run="part", where=slice(0, 300))
    part = pd.Series(t.column("part_suggested_label"))
    assert part[300:].isna().all() and part[:300].notna().all()
    assert t.count('part_suggested_label == "cat"') == (probs[:300].argmax(1) == 0).sum()
    # integer classes named by text columns ("0", "1", ...) match as well
    ti = ww.WeightTable.from_arrays(labels=noisy, name="i", store=str(tmp_path / "i"))
    text = ww.find_label_issues(ti, pd.DataFrame(probs, columns=["0", "1", "2"]), run="t")
    np.testing.assert_array_equal(text.index, ref.index)


def test_torch_float32_probabilities_within_tolerance(t, data):
    torch = pytest.importorskip("torch")
    probs = data[4]
    tensor = torch.softmax(torch.log(torch.tensor(probs, dtype=torch.float32)), 1)
    out = ww.find_label_issues(t, tensor, run="f32")
    ref = ww.find_label_issues(t, probs, run="f64")
    assert len(set(out.index) ^ set(ref.index)) <= 2  # float32 rounding only


def test_errors(t, data):
    probs = data[4]
    with pytest.raises(
        ValueError,
        match=r"shape \(n_rows, n_classes\) = \(1500, 5\), one column per class of "
        r"table.classes \[0, 1, 2, 3, 4\] in that order; got shape \(1500, 4\)",
    ):
        find_label_issues(t, probs[:, :4], run="e")
    with pytest.raises(ValueError, match=r"got shape \(10, 5\)"):
        find_label_issues(t, probs[:10], run="e")
    with pytest.raises(ValueError, match=r"got shape \(1500,\)"):
        find_label_issues(t, probs[:, 0], run="e")
    logits = np.log(probs) + 3.0
    with pytest.raises(
        ValueError,
        match=r"each row of pred_probs must sum to 1 \(within 0.001\); row 0 sums to [0-9.]+ "
        r"\(and 1499 more rows\); pass probabilities, e.g. softmax of logits",
    ):
        find_label_issues(t, np.exp(logits), run="e")
    with pytest.raises(ValueError, match=r"pred_probs must be >= 0; row 0 has -.*softmax"):
        find_label_issues(t, np.log(probs), run="e")
    nan = probs.copy()
    nan[7, 2] = np.nan
    nan[9, 0] = np.inf
    with pytest.raises(
        ValueError,
        match=r"pred_probs must be finite; row 7 holds NaN or inf \(and 1 more rows\).*"
        r"where=~np.isnan\(pred_probs\).any\(axis=1\)",
    ):
        find_label_issues(t, nan, run="e")
    with pytest.raises(
        ValueError,
        match=r"pred_probs' columns do not match the order of table.classes \[0, 1, 2, 3, 4\]: "
        r"the argmax equals the label on \d+% of rows, but on \d+% with the columns reordered",
    ):
        find_label_issues(t, probs[:, [1, 2, 3, 4, 0]], run="e")
    with pytest.raises(
        ValueError,
        match=r"pred_probs' columns must be the table's classes \[0, 1, 2, 3, 4\]; "
        r"missing \[4\], unknown \['x'\]",
    ):
        find_label_issues(t, pd.DataFrame(probs, columns=[0, 1, 2, 3, "x"]), run="e")
    with pytest.raises(ValueError, match=r"run must be an identifier .* got run='1st run'"):
        find_label_issues(t, probs, run="1st run")
    with pytest.raises(ValueError, match=r"all carry label 3; confident learning compares"):
        find_label_issues(t, probs, run="e", where="label == 3")
    with pytest.raises(ValueError, match=r"no labelled rows match where='label == 9'"):
        find_label_issues(t, probs, run="e", where="label == 9")
    with pytest.raises(TypeError, match=r"pred_probs must be an array of numbers"):
        find_label_issues(t, [["a"] * K] * N, run="e")
    assert not any(c.startswith("e_") for c in t.columns) and t.runs().empty


def test_fewer_than_two_classes(tmp_path):
    t = ww.WeightTable.from_arrays(labels=np.zeros(20, int), name="one", store=str(tmp_path))
    with pytest.raises(ValueError, match=r"needs at least 2 classes; the table has 1 \(\[0\]\)"):
        find_label_issues(t, np.ones((20, 1)), run="e")


def test_missing_cleanlab_names_the_extra(t, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)
    with pytest.raises(ImportError, match=r'pip install "weightwidget\[labels\]"'):
        find_label_issues(t, data[4], run="e")


@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(2, 5),
    n=st.integers(40, 200),
    sharp=st.floats(0.5, 6.0),
)
def test_columns_agree_with_the_returned_frame(seed, k, n, sharp):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.arange(k), rng.integers(0, k, n - k)]  # every class present
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), labels] += sharp
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = ww.WeightTable.from_arrays(
        labels=labels, name="h", store=f"memory://h-{uuid.uuid4().hex}", weights=rng.random(n)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab's small-class warnings
        out = find_label_issues(t, probs, run="h")
    flag, quality = t.column("h_label_issue"), t.column("h_label_quality")
    assert sorted(out.index) == list(np.flatnonzero(flag))
    np.testing.assert_allclose(quality, probs[np.arange(n), labels])  # self-confidence
    # worst first, ties by row id
    order = np.lexsort((out.index.to_numpy(), out["quality"].to_numpy()))
    np.testing.assert_array_equal(order, np.arange(len(out)))
    np.testing.assert_array_equal(out["weight"], t.weights[out.index])
    np.testing.assert_array_equal(t.column("h_suggested_label"), probs.argmax(1))
    assert t.runs().iloc[-1]["aggregates"]["flagged"] == flag.sum()


def test_the_cross_val_predict_recipe_with_weights_and_excluded_rows(tmp_path):
    """The README's scikit-learn recipe, as written: included rows, current weights."""
    x, _, noisy, flipped = blobs(seed=4)
    t = ww.WeightTable.from_arrays(labels=noisy, name="r", store=str(tmp_path / "r"))
    t.set_weights(slice(0, 150), 0.0)
    t.balance("balanced")
    rows = t.select("weight > 0")
    pred_probs = np.full((len(t), len(t.classes)), np.nan)
    pred_probs[rows] = cross_val_predict(
        LogisticRegression(max_iter=1000),
        x[rows],
        t.label_codes[rows],
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
        params={"sample_weight": t.weights[rows]},
    )
    issues = ww.find_label_issues(t, pred_probs, run="r1", where=rows)
    assert issues.index.min() >= 150
    assert flipped[issues.index].mean() >= 0.8
    assert t.column("r1_label_issue")[flipped & (t.weights > 0)].mean() >= 0.7
    with pytest.raises(ValueError, match=r"row 0 holds NaN"):  # without where=
        ww.find_label_issues(t, pred_probs, run="r2")


# ------------------------------------------------------------------ out_of_fold


def test_out_of_fold_with_sklearn_matches_the_recipe_and_finds_issues(tmp_path, capsys):
    x, _, noisy, flipped = blobs(seed=1)
    t = ww.WeightTable.from_arrays(labels=noisy, name="o", store=str(tmp_path / "o"))
    t.set_weights(np.arange(0, N, 10), 0.0, message="exclude every tenth row")
    t.set_weights("label == 1 and weight > 0", 3.0)
    calls = []

    def train_fn(ids, sample_weight):
        calls.append((ids.copy(), sample_weight.copy()))
        clf = LogisticRegression(max_iter=1000)
        return clf.fit(x[ids], t.label_codes[ids], sample_weight=sample_weight)

    def predict_fn(model, ids):
        calls[-1] = (*calls[-1], ids.copy())
        return model.predict_proba(x[ids])

    probs = out_of_fold(train_fn, predict_fn, t, folds=4, seed=3)
    assert "out-of-fold" in capsys.readouterr().err  # the tqdm bar
    assert probs.shape == (N, K) and len(calls) == 4
    covered = t.weights > 0
    assert np.isnan(probs[~covered]).all() and np.isfinite(probs[covered]).all()
    tested = np.concatenate([c[2] for c in calls])
    assert sorted(tested) == list(np.flatnonzero(covered))  # each covered row once
    codes = t.label_codes
    for train_ids, sw, test_ids in calls:
        assert np.intersect1d(train_ids, test_ids).size == 0  # never trained on its rows
        assert np.union1d(train_ids, test_ids).tolist() == np.flatnonzero(covered).tolist()
        np.testing.assert_array_equal(sw, t.weights[train_ids])  # the current weights
    # stratified: each class spread over the folds within one row
    per_fold = np.array([np.bincount(codes[c[2]], minlength=K) for c in calls])
    assert (per_fold.max(0) - per_fold.min(0) <= 1).all()
    # seeded: the same folds again, other folds with another seed
    again = out_of_fold(train_fn, predict_fn, t, folds=4, seed=3, progress=False)
    np.testing.assert_array_equal(again, probs)
    other = out_of_fold(train_fn, predict_fn, t, folds=4, seed=4, progress=False)
    assert not np.array_equal(other[covered], probs[covered])
    assert capsys.readouterr().err == ""
    out = ww.find_label_issues(t, probs, run="oof", where=covered)
    precision = flipped[out.index].mean()
    recall = t.column("oof_label_issue")[flipped & covered].mean()
    assert precision >= 0.8 and recall >= 0.7, (precision, recall)


def test_out_of_fold_with_a_torch_model(tmp_path):
    torch = pytest.importorskip("torch")
    x, _, noisy, flipped = blobs(seed=2, n=1000)
    t = ww.WeightTable.from_arrays(labels=noisy, name="tt", store=str(tmp_path / "tt"))
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(t.label_codes, dtype=torch.long)

    def train_fn(ids, sample_weight):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(D, 32), torch.nn.ReLU(), torch.nn.Linear(32, K))
        opt = torch.optim.Adam(model.parameters(), lr=0.02)
        w = torch.tensor(sample_weight, dtype=torch.float32)
        idx = torch.as_tensor(ids)
        for _ in range(60):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx], reduction="none")
            ((loss * w).sum() / w.sum()).backward()
            opt.step()
        return model

    def predict_fn(model, ids):
        with torch.no_grad():
            return torch.softmax(model(xt[torch.as_tensor(ids)]), 1)  # a tensor is fine

    probs = ww.out_of_fold(train_fn, predict_fn, t, folds=5, progress=False)
    assert probs.dtype == np.float64 and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    out = ww.find_label_issues(t, probs, run="torch")
    precision = flipped[out.index].mean()
    recall = t.column("torch_label_issue")[flipped].mean()
    assert precision >= 0.8 and recall >= 0.7, (precision, recall)


def test_out_of_fold_where_and_errors(t, data):
    x = data[0]

    def train_fn(ids, sample_weight):
        return LogisticRegression(max_iter=500).fit(x[ids], t.label_codes[ids])

    def predict_fn(model, ids):
        return model.predict_proba(x[ids])

    probs = out_of_fold(train_fn, predict_fn, t, folds=3, where=slice(0, 600), progress=False)
    assert np.isfinite(probs[:600]).all() and np.isnan(probs[600:]).all()
    with pytest.raises(ValueError, match=r"folds must be an integer >= 2; got folds=1"):
        out_of_fold(train_fn, predict_fn, t, folds=1)
    with pytest.raises(ValueError, match=r"folds=5 is more than the 3 covered rows"):
        out_of_fold(train_fn, predict_fn, t, where=[0, 1, 2])
    with pytest.raises(ValueError, match=r"no included, labelled rows match where='weight == 0'"):
        out_of_fold(train_fn, predict_fn, t, where="weight == 0")
    with pytest.raises(
        ValueError,
        match=r"predict_fn must return shape \(len\(ids\), n_classes\) = \(300, 5\) for fold 0; "
        r"got shape \(300, 4\)",
    ):
        out_of_fold(train_fn, lambda m, ids: predict_fn(m, ids)[:, :4], t, folds=5, progress=False)
    with pytest.warns(UserWarning, match=r"least populated class 4 has only 2 covered rows"):
        rows = np.r_[np.flatnonzero(t.labels != 4)[:100], np.flatnonzero(t.labels == 4)[:2]]
        out_of_fold(train_fn, predict_fn, t, folds=3, where=rows, progress=False)


@given(
    seed=st.integers(0, 1000),
    folds=st.integers(2, 6),
    sizes=st.lists(st.integers(0, 30), min_size=2, max_size=5),
)
def test_out_of_fold_partition_is_stratified(seed, folds, sizes):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    assume(labels.size >= folds)
    t = ww.WeightTable.from_arrays(labels=labels, name="p", store=f"memory://p-{uuid.uuid4().hex}")
    seen = []

    def train_fn(ids, sample_weight):
        return ids

    def predict_fn(model, ids):
        seen.append((model, ids))
        out = np.zeros((ids.size, len(t.classes)))
        out[:, 0] = 1.0
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small classes
        probs = out_of_fold(train_fn, predict_fn, t, folds=folds, seed=seed, progress=False)
    assert len(seen) == folds
    tested = np.concatenate([ids for _, ids in seen])
    assert np.sort(tested).tolist() == list(range(labels.size))
    for train_ids, test_ids in seen:
        assert np.intersect1d(train_ids, test_ids).size == 0
        assert train_ids.size + test_ids.size == labels.size
    per_fold = np.array(
        [np.bincount(t.label_codes[ids], minlength=len(t.classes)) for _, ids in seen]
    )
    assert (per_fold.max(0) - per_fold.min(0) <= 1).all()
    sizes_per_fold = [ids.size for _, ids in seen]
    assert max(sizes_per_fold) - min(sizes_per_fold) <= 1
    assert np.isfinite(probs).all()


# ------------------------------------------------------------------ suggest_to_label


class Unlabelled:
    """A stand-in for a table with missing labels (label code -1), until tables hold them."""

    def __init__(self, codes, classes=(0, 1, 2)):
        self.label_codes = np.asarray(codes)
        self.classes = np.asarray(classes)

    def __len__(self):
        return len(self.label_codes)


SUGGEST_PROBS = np.array(
    [
        [0.5, 0.5, 0.0],  # least confident 0.5, margin 1.0, entropy 0.693
        [0.4, 0.3, 0.3],  # 0.6, 0.9, 1.089
        [0.45, 0.45, 0.1],  # 0.55, 1.0, 0.949
        [0.9, 0.05, 0.05],  # 0.1, 0.15, 0.394
        [np.nan, np.nan, np.nan],  # labelled: never read
        [0.2, 0.2, 0.6],  # 0.4, 0.6, 0.950
    ]
)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("least_confident", [1, 2, 0, 5, 3]),
        ("entropy", [1, 5, 2, 0, 3]),
        ("margin", [None, None, 1, 5, 3]),  # rows 0 and 2 tie at 1.0: the seed orders them
    ],
)
def test_suggest_to_label_returns_unlabelled_rows_in_strategy_order(strategy, expected):
    scipy_stats = pytest.importorskip("scipy.stats")
    t = Unlabelled([-1, -1, -1, -1, 2, -1])
    out = ww.suggest_to_label(t, SUGGEST_PROBS, 10, strategy=strategy, seed=0)
    rows = out.index.tolist()
    assert len(rows) == 5 and 4 not in rows  # every unlabelled row, none labelled
    assert [r for r, e in zip(rows, expected, strict=True) if e is not None] == [
        e for e in expected if e is not None
    ]
    assert set(rows[:2]) == ({0, 2} if strategy == "margin" else set(expected[:2]))
    p = SUGGEST_PROBS[rows]
    reference = {
        "least_confident": 1 - p.max(1),
        "margin": 1 - (np.sort(p, 1)[:, -1] - np.sort(p, 1)[:, -2]),
        "entropy": scipy_stats.entropy(p, axis=1),
    }[strategy]
    np.testing.assert_allclose(out["score"], reference, atol=1e-12)
    np.testing.assert_array_equal(out["suggested_label"], p.argmax(1))
    np.testing.assert_allclose(out["confidence"], p.max(1))
    assert out.index.name == "row"
    top2 = ww.suggest_to_label(t, SUGGEST_PROBS, 2, strategy=strategy, seed=0)
    assert top2.index.tolist() == rows[:2]  # k cuts the same order


def test_suggest_to_label_breaks_ties_by_seed_uniformly():
    t = Unlabelled([-1] * 5 + [0] * 3)
    probs = np.full((8, 3), 1 / 3)
    orders = {seed: ww.suggest_to_label(t, probs, 5, seed=seed).index.tolist() for seed in range(3)}
    assert orders[0] == ww.suggest_to_label(t, probs, 5, seed=0).index.tolist()
    assert len({tuple(o) for o in orders.values()}) > 1
    first = [ww.suggest_to_label(t, probs, 1, seed=s).index[0] for s in range(1000)]
    counts = np.bincount(first, minlength=5)
    assert counts.sum() == 1000 and counts[5:].sum() == 0
    scipy_stats = pytest.importorskip("scipy.stats")
    assert scipy_stats.chisquare(counts[:5]).pvalue > 1e-3, counts  # no row favoured


def test_suggest_to_label_inputs_and_errors(tmp_path):
    t = Unlabelled([-1, 0, -1, 1], classes=["cat", "dog", "emu"])
    sub = np.array([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])  # the unlabelled rows only
    out = ww.suggest_to_label(t, sub, 5, seed=1)
    assert out.index.tolist() == [0, 2] and out["suggested_label"].tolist() == ["dog", "cat"]
    named = pd.DataFrame(sub[:, [2, 0, 1]], columns=["emu", "cat", "dog"])
    pd.testing.assert_frame_equal(ww.suggest_to_label(t, named, 5, seed=1), out)
    with pytest.raises(ValueError, match=r"k must be an integer >= 1; got k=0"):
        ww.suggest_to_label(t, sub, 0)
    with pytest.raises(ValueError, match=r"strategy must be one of .*got 'margins' \(did you mean"):
        ww.suggest_to_label(t, sub, 1, strategy="margins")
    with pytest.raises(ValueError, match=r"= \(4, 3\) or \(2, 3\) for the 2 unlabelled rows"):
        ww.suggest_to_label(t, sub[:1], 1)
    with pytest.raises(ValueError, match=r"row 2 sums to 2.*softmax of logits"):
        ww.suggest_to_label(t, np.array([[0.2, 0.5, 0.3], [1.0, 0.5, 0.5]]), 1)
    labelled = ww.WeightTable.from_arrays(labels=[0, 1, 1], name="l", store=str(tmp_path))
    with pytest.raises(ValueError, match=r"every row is labelled: suggest_to_label picks among"):
        ww.suggest_to_label(labelled, np.full((3, 2), 0.5), 1)


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    c=st.integers(2, 6),
    k=st.integers(1, 70),
    strategy=st.sampled_from(["least_confident", "margin", "entropy"]),
)
def test_suggest_to_label_takes_the_top_scores(seed, n, c, k, strategy):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random(n) < 0.6, -1, rng.integers(0, c, n))
    assume((codes < 0).any())
    probs = rng.dirichlet(np.full(c, 0.5), size=n)
    probs[rng.random(n) < 0.2] = probs[0]  # exact ties
    out = ww.suggest_to_label(Unlabelled(codes, classes=range(c)), probs, k, strategy=strategy)
    unlabelled = np.flatnonzero(codes < 0)
    assert len(out) == min(k, unlabelled.size) and set(out.index) <= set(unlabelled)
    assert out.index.is_unique and (np.diff(out["score"].to_numpy()) <= 0).all()
    left = np.setdiff1d(unlabelled, out.index)
    if left.size:
        everyone = ww.suggest_to_label(Unlabelled(codes, range(c)), probs, n, strategy=strategy)
        assert everyone.loc[left, "score"].max() <= out["score"].min()
