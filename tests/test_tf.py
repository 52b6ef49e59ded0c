"""tf.data export with real TensorFlow and Keras 3 (weightwidget.tf)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import weightwidget as ww
from weightwidget._sampling import sample_weight
from weightwidget.metrics import collect_metrics
from weightwidget.samplers import create_sampler
from weightwidget.tf import to_tf_dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

pytestmark = pytest.mark.tf

N, D, C = 300, 4, 3


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype(np.float32)
    y = rng.integers(0, C, size=N)
    w = rng.uniform(0.5, 2.0, size=N)
    w[y == 2] = 0.0  # class 2 is excluded
    t = ww.WeightTable.from_arrays(labels=y, name="k", store=str(tmp_path / "k"), weights=w)
    return t, x, y, w


def make_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(C)]
    )
    return model


def compile_(model):
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )


@pytest.mark.parametrize("exclude", [True, False])
def test_weight_zero_rows_do_not_move_fit_or_evaluate_by_one_ulp(data, exclude):
    t, x, y, _ = data
    relabelled = y.copy()
    relabelled[y == 2] = 0  # change every excluded row's label
    init = make_model().get_weights()
    results = []
    for labels in (y, relabelled):
        model = make_model()
        model.set_weights(init)
        compile_(model)
        ds = to_tf_dataset(t, x, labels, batch_size=64, exclude_zero_weights=exclude, seed=0)
        model.fit(ds, epochs=2, verbose=0, shuffle=False)
        loss = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
        results.append((loss, model.get_weights()))
    (loss_a, w_a), (loss_b, w_b) = results
    assert loss_a == loss_b  # exact: not even one ulp
    for a, b in zip(w_a, w_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(w_a[0], init[0]), "training must have moved the weights"


def test_loss_is_keras_sum_over_batch_size_with_zero_rows_dropped_or_kept(data):
    t, x, y, w = data
    model = make_model()
    compile_(model)
    logits = model.predict(x, verbose=0).astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    per_row = -logp[np.arange(N), y]
    nnz = int((w > 0).sum())
    dropped = model.evaluate(to_tf_dataset(t, x, batch_size=64), verbose=0, return_dict=True)
    kept = model.evaluate(
        to_tf_dataset(t, x, batch_size=64, exclude_zero_weights=False),
        verbose=0,
        return_dict=True,
    )
    # Keras 3: each batch's loss is sum(w * loss) / rows in the batch, and evaluate
    # averages batches by their row count, so overall sum(w * loss) / rows.
    np.testing.assert_allclose(dropped["loss"], (w * per_row).sum() / nnz, rtol=1e-5)
    np.testing.assert_allclose(kept["loss"], (w * per_row).sum() / N, rtol=1e-5)
    assert kept["loss"] < dropped["loss"]
    # weighted accuracy does not depend on the divisor
    np.testing.assert_allclose(dropped["acc"], kept["acc"], rtol=1e-6)


def test_fit_on_arrays_with_sample_weight_matches_the_kept_dataset(data):
    t, x, y, _ = data
    model = make_model()
    compile_(model)
    arrays = model.evaluate(
        x, y, sample_weight=sample_weight(t), batch_size=64, verbose=0, return_dict=True
    )
    kept = model.evaluate(
        to_tf_dataset(t, x, batch_size=64, exclude_zero_weights=False, shuffle=False),
        verbose=0,
        return_dict=True,
    )
    np.testing.assert_allclose(arrays["loss"], kept["loss"], rtol=1e-6)
    np.testing.assert_allclose(arrays["acc"], kept["acc"], rtol=1e-6)


@pytest.mark.parametrize("as_probabilities", [False, True])
def test_keras_sparse_categorical_accuracy_agrees_with_collect_metrics(data, as_probabilities):
    t, x, y, w = data
    model = make_model(seed=1)
    scores = model.predict(x, verbose=0)
    if as_probabilities:
        scores = tf.nn.softmax(scores).numpy()
    ours = collect_metrics(t, scores, run="keras")
    assert ours["input"] == ("probabilities" if as_probabilities else "logits")
    metric = keras.metrics.SparseCategoricalAccuracy()
    metric.update_state(y, scores, sample_weight=w)
    np.testing.assert_allclose(ours["accuracy"], float(metric.result()), rtol=1e-6)
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=not as_probabilities, reduction=None
    )(y, scores).numpy()
    np.testing.assert_allclose(t.column("keras_loss"), loss, rtol=1e-4, atol=1e-6)
    for c in (0, 1):
        r = keras.metrics.SparseCategoricalAccuracy()
        r.update_state(y[y == c], scores[y == c], sample_weight=w[y == c])
        np.testing.assert_allclose(ours["per_class_recall"][c], float(r.result()), rtol=1e-6)
    assert np.isnan(ours["per_class_recall"][2])


def test_weights_mode_yields_x_y_w_and_drops_zero_rows(data):
    t, x, y, w = data
    rows = list(to_tf_dataset(t, {"a": x, "b": np.arange(N)}, shuffle=False).as_numpy_iterator())
    keep = np.flatnonzero(w > 0)
    assert len(rows) == keep.size
    got_b = np.array([r[0]["b"] for r in rows])
    np.testing.assert_array_equal(got_b, keep)
    np.testing.assert_array_equal([r[1] for r in rows], y[keep])
    np.testing.assert_array_equal([r[2] for r in rows], w[keep].astype(np.float32))
    assert rows[0][2].dtype == np.float32
    kept = t.to_tf_dataset(x, exclude_zero_weights=False, batch_size=100)
    assert [len(b[0]) for b in kept] == [100, 100, 100]


def test_resample_mode_draws_by_weight_and_fresh_each_epoch(data):
    t, _, y, w = data
    ds = to_tf_dataset(t, np.arange(N), mode="resample", seed=7, batch_size=50)
    nnz = int((w > 0).sum())
    assert int(ds.cardinality()) == -(-nnz // 50)
    epochs = [np.concatenate([xb for xb, _ in ds.as_numpy_iterator()]) for _ in range(2)]
    sampler = create_sampler(t, seed=7)
    for e, got in enumerate(epochs):
        np.testing.assert_array_equal(got, sampler.indices(e))  # same draws as torch's sampler
        assert (w[got] > 0).all()
    assert not np.array_equal(epochs[0], epochs[1])
    again = to_tf_dataset(t, np.arange(N), mode="resample", seed=7)
    first = np.array([xv for xv, _ in again.as_numpy_iterator()])
    np.testing.assert_array_equal(first, epochs[0])
    x_and_y = next(iter(again))
    assert int(x_and_y[1]) == y[int(x_and_y[0])]


def test_resample_trains_a_keras_model(data):
    t, x, _, _ = data
    model = make_model()
    compile_(model)
    hist = model.fit(
        to_tf_dataset(t, x, mode="resample", seed=0, batch_size=32),
        epochs=2,
        verbose=0,
        shuffle=False,
    )
    assert len(hist.history["loss"]) == 2 and np.isfinite(hist.history["loss"]).all()


def test_errors(data, monkeypatch):
    t, x, _, _ = data
    with pytest.raises(ValueError, match=r"mode must be 'weights' or 'resample'; got mode='x'"):
        to_tf_dataset(t, x, mode="x")
    with pytest.raises(ValueError, match=r"features 'features' must have one entry per table row"):
        to_tf_dataset(t, x[:10])
    with pytest.raises(ValueError, match=r"labels must have one entry per table row \(300\)"):
        to_tf_dataset(t, x, np.zeros(3))
    with pytest.raises(ValueError, match=r"batch_size should be a positive integer"):
        to_tf_dataset(t, x, batch_size=0)
    t.set_weights(None, 0)
    with pytest.raises(ValueError, match=r"all 300 weights are 0"):
        to_tf_dataset(t, x, mode="resample")
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=r'pip install "weightwidget\[tf\]"'):
        to_tf_dataset(t, x)


def _batches(ds):
    return [tuple(np.asarray(part) for part in b) for b in ds.as_numpy_iterator()]


def test_weights_mode_shuffles_rows_not_batches_each_epoch_seeded(tmp_path):
    labels = np.repeat([0, 1, 2], 200)  # sorted by class: row order gives one-class batches
    t = ww.WeightTable.from_arrays(labels=labels, name="sorted", store=str(tmp_path / "s"))
    ds = to_tf_dataset(t, np.arange(labels.size), batch_size=50, seed=3)
    first, second = _batches(ds), _batches(ds)
    for epoch in (first, second):
        rows = np.concatenate([x for x, _, _ in epoch])
        np.testing.assert_array_equal(np.sort(rows), np.arange(labels.size))  # each row once
        assert all(len(set(y.tolist())) > 1 for _, y, _ in epoch), "a batch of one class"
    assert not np.array_equal(first[0][0], second[0][0]), "each epoch is a fresh order"
    again = _batches(to_tf_dataset(t, np.arange(labels.size), batch_size=50, seed=3))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])  # same seed, same order
    other = _batches(to_tf_dataset(t, np.arange(labels.size), batch_size=50, seed=4))
    assert not np.array_equal(first[0][0], other[0][0])
    plain = _batches(t.to_tf_dataset(np.arange(labels.size), batch_size=50, shuffle=False))
    np.testing.assert_array_equal(plain[0][0], np.arange(50))  # shuffle=False: row order
    assert int(ds.cardinality()) == 12
    uneven = to_tf_dataset(t, np.arange(labels.size), batch_size=70, seed=3)
    assert int(uneven.cardinality()) == 9
    sizes = [len(x) for x, _, _ in _batches(uneven)]
    assert sizes == [70] * 8 + [40]  # the last batch holds the rest


class _PartlyLabelled:
    """A WeightSource whose rows 0, 3, 6, ... have no label (code -1) and a big weight."""

    def __init__(self, weights=None):
        self.weights = np.linspace(1.0, 2.0, N) if weights is None else weights
        codes = np.arange(N) % C
        codes[::3] = -1
        self.label_codes = codes
        self.classes = np.arange(C)
        self.revision = 0

    def latest(self):
        return self


def test_unlabelled_rows_are_left_out_of_both_modes():
    src = _PartlyLabelled()
    src.weights[::3] = 1e6
    labelled = np.flatnonzero(src.label_codes >= 0)
    for kw in ({}, {"exclude_zero_weights": False}, {"shuffle": False}):
        rows = np.concatenate(
            [
                x
                for x, _, _ in _batches(
                    to_tf_dataset(src, np.arange(N), **kw, batch_size=64, seed=0)
                )
            ]
        )
        np.testing.assert_array_equal(np.sort(rows), labelled)
    ds = to_tf_dataset(src, np.arange(N), mode="resample", seed=1, exclude_zero_weights=False)
    drawn = np.array([int(x) for x, _ in ds.as_numpy_iterator()])
    assert drawn.size == labelled.size and set(drawn) <= set(labelled)
    np.testing.assert_array_equal(
        drawn, create_sampler(src, exclude_zero_weights=False, seed=1).indices()
    )


def test_weights_summing_to_infinity_are_refused():
    w = np.ones(N)
    w[:3] = 1e308
    for mode in ("weights", "resample"):
        with pytest.raises(ValueError, match=r"weights sum to infinity"):
            to_tf_dataset(w, np.arange(N), mode=mode)
        with pytest.raises(ValueError, match=r"weights sum to infinity"):
            to_tf_dataset(_PartlyLabelled(w), np.arange(N), mode=mode)


def test_table_method_and_function_share_one_signature_and_documentation():
    import inspect

    ours = list(inspect.signature(to_tf_dataset).parameters.values())[1:]
    table = list(inspect.signature(ww.WeightTable.to_tf_dataset).parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in ours] == [
        (p.name, p.kind, p.default) for p in table
    ]
    names = [p.name for p in ours if p.kind is p.KEYWORD_ONLY]
    assert names == ["mode", "batch_size", "seed", "exclude_zero_weights", "shuffle"]
    for fn in (to_tf_dataset, ww.WeightTable.to_tf_dataset):
        for name in names:
            assert f"\n{name} : " in fn.__doc__, name
    with pytest.raises(TypeError, match=r"'batchsize' \(did you mean 'batch_size'\?\)"):
        to_tf_dataset(np.ones(3), np.zeros(3), batchsize=2)
