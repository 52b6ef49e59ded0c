"""Per-sample metrics into the table and loss-driven reweighting (weightwidget.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import weightwidget as ww
from weightwidget.metrics import collect_metrics, focus_on_hard, metric_columns

LOGITS = np.array(
    [
        [3.0, 0.0, 0.0],  # a, right
        [0.0, 1.0, 5.0],  # b, predicted c
        [0.0, 0.0, 2.0],  # c, right
        [0.0, 4.0, 1.0],  # a, predicted b
        [2.0, 2.5, 0.0],  # b, right
    ]
)
LABELS = np.array(["a", "b", "c", "a", "b"])
WEIGHTS = np.array([1.0, 2.0, 0.0, 3.0, 0.5])


@pytest.fixture
def t(tmp_path):
    return ww.WeightTable.from_arrays(
        labels=LABELS, name="m", store=str(tmp_path / "m"), weights=WEIGHTS
    )


def reference_loss(logits, codes):
    return torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(codes), reduction="none"
    ).numpy()


def test_columns_values_and_weighted_aggregates(t):
    m = collect_metrics(t, LOGITS, run="r1")
    codes = np.array([0, 1, 2, 0, 1])
    loss = reference_loss(LOGITS, codes)
    np.testing.assert_allclose(t.column("r1_loss"), loss, rtol=1e-12)
    assert list(t.column("r1_pred")) == ["a", "c", "c", "b", "b"]
    np.testing.assert_array_equal(t.column("r1_correct"), [1, 0, 1, 0, 1])
    conf = torch.softmax(torch.tensor(LOGITS), 1).max(1).values.numpy()
    np.testing.assert_allclose(t.column("r1_confidence"), conf, rtol=1e-12)
    correct = np.array([1, 0, 1, 0, 1.0])
    assert math.isclose(m["accuracy"], (WEIGHTS * correct).sum() / WEIGHTS.sum())
    assert math.isclose(m["loss"], (WEIGHTS * loss).sum() / WEIGHTS.sum())
    assert m["per_class_recall"] == {
        "a": 1 / 4,
        "b": 0.5 / 2.5,
        "c": pytest.approx(float("nan"), nan_ok=True),
    }
    assert m["rows"] == 5 and m["weight_sum"] == WEIGHTS.sum()
    assert math.isclose(m["unweighted_accuracy"], 0.6)
    assert m["columns"] == ["r1_loss", "r1_pred", "r1_confidence", "r1_correct"]
    assert m["input"] == "logits"
    assert m["columns"] == list(metric_columns("r1").values())
    # visible to filters
    assert t.count("r1_loss > 2") == int((loss > 2).sum()) == 2
    assert list(t.select("r1_correct == 0")) == [1, 3]
    assert list(t.select('r1_pred == "c"')) == [1, 2]


def test_columns_persist_and_reach_another_table(t):
    assert ww.collect_metrics is collect_metrics
    ww.collect_metrics(t, LOGITS, run="e1")
    other = ww.WeightTable.open(t.store_url)
    np.testing.assert_array_equal(other.column("e1_loss"), t.column("e1_loss"))
    collect_metrics(t, -LOGITS, run="e1")  # the same run again replaces its columns
    assert t.column("e1_correct").sum() != 3
    np.testing.assert_array_equal(other.latest().column("e1_loss"), t.column("e1_loss"))


def test_probabilities_are_detected_and_clipped_like_keras(t):
    probs = torch.softmax(torch.tensor(LOGITS), 1).numpy()
    m = collect_metrics(t, probs.astype(np.float32), run="p")
    assert m["input"] == "probabilities"
    codes = np.array([0, 1, 2, 0, 1])
    np.testing.assert_allclose(t.column("p_loss"), reference_loss(LOGITS, codes), rtol=1e-5)
    hard = np.eye(3)[[1, 1, 2, 0, 1]]  # one-hot: row 0 has probability 0 on its label
    collect_metrics(t, hard, run="h")
    assert math.isclose(t.column("h_loss")[0], -math.log(1e-7))
    # logits that happen to be in [0, 1] but do not sum to 1 are logits
    assert collect_metrics(t, np.full((5, 3), 0.5), run="u")["input"] == "logits"


def test_exclude_zero_weights_makes_excluded_rows_absent(t):
    m = collect_metrics(t, LOGITS, run="x", exclude_zero_weights=True)
    loss = t.column("x_loss")
    assert np.isnan(loss[2]) and np.isnan(t.column("x_correct")[2])
    assert np.isnan(t.column("x_confidence")[2]) and t.column("x_pred")[2] == "c"
    assert np.isfinite(np.delete(loss, 2)).all()
    assert m["rows"] == 4 and math.isclose(m["unweighted_accuracy"], 0.5)
    full = collect_metrics(t, LOGITS, run="y")
    assert math.isclose(m["accuracy"], full["accuracy"])  # weight 0 adds nothing anyway
    assert full["unweighted_accuracy"] != m["unweighted_accuracy"]


def test_labels_override_torch_input_and_binary(tmp_path, t):
    m = collect_metrics(
        t, torch.tensor(LOGITS, requires_grad=True), labels=["a", "c", "c", "b", "b"]
    )
    assert m["accuracy"] == 1.0 and "name_loss" in t.columns  # run defaults to "name"
    b = ww.WeightTable.from_arrays(labels=[0, 1, 1, 0], name="b", store=str(tmp_path / "b"))
    m = collect_metrics(b, np.array([0.2, 0.9, 0.4, 0.1]), run="bin")
    assert m["accuracy"] == 0.75 and m["input"] == "probabilities"
    np.testing.assert_allclose(b.column("bin_loss"), -np.log([0.8, 0.9, 0.4, 0.9]))
    m = collect_metrics(b, np.array([[-2.0], [3.0], [-1.0], [-4.0]]), run="logit")
    assert m["accuracy"] == 0.75 and m["input"] == "logits"
    np.testing.assert_allclose(b.column("logit_confidence")[1], 1 / (1 + math.exp(-3)))


def test_errors(t):
    with pytest.raises(
        ValueError,
        match=r"shape \(n_rows, n_classes\) = \(5, 3\).*'a', 'b', 'c'.*got shape \(5, 2\)",
    ):
        collect_metrics(t, LOGITS[:, :2], run="e")
    with pytest.raises(ValueError, match=r"row 1 holds NaN or inf"):
        collect_metrics(t, np.where(np.arange(15).reshape(5, 3) == 4, np.nan, LOGITS), run="e")
    with pytest.raises(
        ValueError,
        match=r"labels \['z'\] are not classes of the table; known classes: \['a', 'b', 'c'\]",
    ):
        collect_metrics(t, LOGITS, labels=["a", "b", "z", "a", "b"], run="e")
    with pytest.raises(ValueError, match=r"labels must have shape \(5,\)"):
        collect_metrics(t, LOGITS, labels=["a"], run="e")
    with pytest.raises(ValueError, match=r"run must be an identifier .* got run='1 run'"):
        collect_metrics(t, LOGITS, run="1 run")
    with pytest.raises(TypeError, match=r"predictions must be an array of numbers"):
        collect_metrics(t, [["x"] * 3] * 5, run="e")
    assert "e_loss" not in t.columns


def test_focus_on_hard_weights_follow_loss_power(t):
    collect_metrics(t, LOGITS, run="r")
    loss = t.column("r_loss")
    before = t.weights.copy()
    rev = focus_on_hard(t, "r_loss", gamma=2.0, where='label != "a"')
    assert rev == t.revision == 2  # collect_metrics committed revision 1
    sel = np.array([1, 4])  # label != a and weight > 0 (row 2 is excluded and stays so)
    new = t.weights
    assert new[2] == 0.0
    np.testing.assert_array_equal(new[[0, 3]], before[[0, 3]])
    np.testing.assert_allclose(new[sel].sum(), before[sel].sum())
    np.testing.assert_allclose(new[1] / new[4], (loss[1] / loss[4]) ** 2)
    assert (
        t.history()["message"].iloc[-1]
        == 'focus on hard: weight ∝ r_loss**2 (where label != "a", 2 rows)'
    )
    focus_on_hard(t, "r_loss", gamma=0, message="flatten")
    nz = t.weights[t.weights > 0]
    np.testing.assert_allclose(nz, nz[0])
    assert t.history()["message"].iloc[-1] == "flatten"


def test_focus_on_hard_errors(t):
    collect_metrics(t, LOGITS, run="r", exclude_zero_weights=True)
    with pytest.raises(ValueError, match=r"gamma must be finite and >= 0; got gamma=-1"):
        focus_on_hard(t, "r_loss", gamma=-1)
    with pytest.raises(
        ValueError, match=r"no row with a non-zero weight matches where='label == \"c\"'"
    ):
        focus_on_hard(t, "r_loss", where='label == "c"')
    # NaN losses of excluded rows are fine: excluded rows are skipped
    focus_on_hard(t, "r_loss")
    t.set_columns({"neg": np.array([1.0, -1.0, 0.0, 1.0, 1.0]), "zero": np.zeros(5)})
    with pytest.raises(ValueError, match=r"column 'neg' must be finite and >= 0 .* -1.0 at row 1"):
        focus_on_hard(t, "neg")
    with pytest.raises(ValueError, match=r"column 'zero' is 0 on every selected row"):
        focus_on_hard(t, "zero")
    with pytest.raises(KeyError, match=r"unknown column 'nope'"):
        focus_on_hard(t, "nope")


def test_loss_reduction_weighted_mean_or_keras_sum_over_batch_size(t):
    codes = np.array([0, 1, 2, 0, 1])
    loss = reference_loss(LOGITS, codes)
    mean = collect_metrics(t, LOGITS, run="a")
    keras_form = collect_metrics(t, LOGITS, run="b", loss_reduction="sum_over_batch_size")
    assert mean["loss_reduction"] == "weighted_mean"
    assert keras_form["loss_reduction"] == "sum_over_batch_size"
    assert math.isclose(mean["loss"], (WEIGHTS * loss).sum() / WEIGHTS.sum())
    assert math.isclose(keras_form["loss"], (WEIGHTS * loss).sum() / 5)  # row 2 (w=0) counts
    dropped = collect_metrics(
        t, LOGITS, run="c", loss_reduction="sum_over_batch_size", exclude_zero_weights=True
    )
    assert math.isclose(dropped["loss"], (WEIGHTS * loss).sum() / 4)  # row 2 left out
    assert keras_form["accuracy"] == mean["accuracy"]  # only the loss changes
    with pytest.raises(
        ValueError,
        match=r"loss_reduction must be one of 'weighted_mean', 'sum_over_batch_size'; "
        r"got 'mean'",
    ):
        collect_metrics(t, LOGITS, run="d", loss_reduction="mean")


def test_collect_metrics_records_its_run(t):
    t.set_weights([0], 4.0)
    m = collect_metrics(t, LOGITS, run="r1", loss_reduction="sum_over_batch_size")
    runs = t.runs()
    assert list(runs["run"]) == ["r1"] and runs.iloc[0]["kind"] == "metrics"
    assert runs.iloc[0]["revision"] == 1 and runs.iloc[0]["columns"] == m["columns"]
    agg = runs.iloc[0]["aggregates"]
    assert (
        agg["loss"] == pytest.approx(m["loss"]) and agg["loss_reduction"] == "sum_over_batch_size"
    )
    assert agg["accuracy"] == pytest.approx(m["accuracy"]) and agg["rows"] == 5
    assert agg["per_class_recall"] == {
        "a": pytest.approx(4 / 7),
        "b": pytest.approx(0.2),
        "c": None,
    }


@pytest.mark.tf
@pytest.mark.parametrize("exclude", [False, True])
def test_sum_over_batch_size_is_the_loss_keras_reports(tmp_path, exclude):
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    from weightwidget.tf import to_tf_dataset

    rng = np.random.default_rng(0)
    n, d, c = 250, 4, 3
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, c, size=n)
    w = rng.uniform(0.2, 3.0, size=n)
    w[rng.random(n) < 0.2] = 0.0
    t = ww.WeightTable.from_arrays(labels=y, name="k", store=str(tmp_path / "k"), weights=w)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(c)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if exclude:  # to_tf_dataset leaves weight-0 rows out
        reported = model.evaluate(to_tf_dataset(t, x, batch_size=32), verbose=0)
    else:  # arrays with sample_weight keep them, counted in the divisor
        reported = model.evaluate(x, y, sample_weight=t.sample_weight(), batch_size=32, verbose=0)
    logits = model.predict(x, verbose=0)
    ours = collect_metrics(
        t,
        logits,
        run="k",
        loss_reduction="sum_over_batch_size",
        exclude_zero_weights=exclude,
    )
    np.testing.assert_allclose(ours["loss"], reported, rtol=1e-5)
    weighted_mean = collect_metrics(t, logits, run="k2", exclude_zero_weights=exclude)["loss"]
    assert not math.isclose(weighted_mean, reported, rel_tol=1e-3)  # the other form differs
