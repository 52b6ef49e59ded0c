"""Samplers, loss weights and the torch Dataset wrapper (weightwidget.samplers, _sampling).

Statistical tests use fixed seeds and a chi-square goodness-of-fit test; each
asserts p > 0.001, i.e. a correct sampler fails one such test with probability
1/1000 for a random seed, and never for these fixed seeds.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import re
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import weightwidget as ww
from weightwidget import _sampling, protocol
from weightwidget.protocol import ArrayWeights, SamplerOptions, as_source, is_weight_source
from weightwidget.samplers import (
    WeightedDataset,
    WeightedTableSampler,
    create_sampler,
    sample_weight,
    weighted_mean_loss,
)

from .conftest import run_json, run_python

P_MIN = 0.001

# Skewed: a heavy row, several tiny ones, zeros in the middle and at both ends.
SKEWED = np.array([0.0, 50.0, 1.0, 0.0, 0.01, 3.0, 0.5, 0.0, 20.0, 0.2, 7.0, 0.0])


def table_of(tmp_path, weights, labels=None, name="s") -> ww.WeightTable:
    weights = np.asarray(weights, dtype=float)
    if labels is None:
        labels = np.arange(weights.size) % 3
    return ww.WeightTable.from_arrays(
        labels=labels, name=name, store=str(tmp_path / name), weights=weights
    )


def chisquare_p(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs / probs.sum() * counts.sum()
    return float(stats.chisquare(counts, expected).pvalue)


# ----------------------------------------------------------------------------- draws


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 100_003])
def test_guide_table_draws_equal_inverse_cdf(n):
    rng = np.random.default_rng(n)
    w = rng.random(n) ** 6
    w[rng.random(n) < 0.3] = 0.0
    w[: n // 2] *= 1e-12  # a run of tiny weights: many rows share one bucket
    w[-1] = 1.0
    prep = _sampling.prepare(w)
    got = _sampling.draw_with_replacement(prep, 50_000, np.random.default_rng(7))
    u = np.random.default_rng(7).random(50_000) * prep.cdf[-1]
    ref = np.searchsorted(prep.cdf, u, side="right")  # cdf spans every row, zeros too
    np.testing.assert_array_equal(got, ref)
    assert (w[got] > 0).all()


@given(
    weights=st.lists(
        st.one_of(
            st.just(0.0),
            st.floats(1e-300, 1e300),
            st.sampled_from([1e-12, 1.0, 3.0]),
        ),
        min_size=1,
        max_size=200,
    ).filter(lambda w: 0 < sum(w) < 1e307),
    seed=st.integers(0, 2**32 - 1),
)
def test_draws_are_the_inverse_cdf_of_any_weights(weights, seed):
    w = np.array(weights)
    prep = _sampling.prepare(w)
    got = _sampling.draw_with_replacement(prep, 2000, np.random.default_rng(seed))
    u = np.random.default_rng(seed).random(2000) * prep.cdf[-1]
    np.testing.assert_array_equal(got, np.searchsorted(prep.cdf, u, side="right"))
    assert (w[got] > 0).all(), "a weight-0 row was drawn"


def test_probabilities_stay_float64_exact_past_2_pow_24_rows():
    # every row keeps its own interval of the cdf: in float32 the cumulative sum
    # stops growing at 2**24 and the rows after it could never be drawn
    w = np.ones(2**24 + 10)
    prep = _sampling.prepare(w)
    assert (np.diff(prep.cdf) == 1.0).all()
    assert np.float32(2**24) + np.float32(1) == np.float32(2**24)  # what float32 would do


def test_with_replacement_chi_square_on_skewed_weights(tmp_path):
    t = table_of(tmp_path, SKEWED)
    s = create_sampler(t, 200_000, seed=1234)
    idx = np.fromiter(iter(s), dtype=np.int64)
    assert idx.size == 200_000
    counts = np.bincount(idx, minlength=SKEWED.size)
    assert counts[SKEWED == 0].sum() == 0, "a weight-0 row was drawn"
    nz = SKEWED > 0
    assert chisquare_p(counts[nz], SKEWED[nz]) > P_MIN


def _sequence_probability(w: np.ndarray, seq: tuple[int, ...]) -> float:
    p, left = 1.0, w.sum()
    for i in seq:
        p *= w[i] / left
        left -= w[i]
    return p


def test_without_replacement_matches_successive_draws_exactly(tmp_path):
    # Brute force: P(ordered pair (i, j)) = w_i / W * w_j / (W - w_i), over all pairs.
    w = np.array([5.0, 0.0, 1.0, 0.25, 2.0, 0.0, 8.0])
    t = table_of(tmp_path, w)
    s = create_sampler(t, 2, replacement=False, seed=99)
    nz = np.flatnonzero(w > 0)
    pairs = list(itertools.permutations(nz.tolist(), 2))
    where = {p: k for k, p in enumerate(pairs)}
    counts = np.zeros(len(pairs))
    epochs = 30_000
    for _ in range(epochs):
        a, b = s  # each iteration is a fresh epoch
        counts[where[(a, b)]] += 1
    probs = np.array([_sequence_probability(w, p) for p in pairs])
    assert math.isclose(probs.sum(), 1.0)
    assert chisquare_p(counts, probs) > P_MIN
    # Inclusion probabilities (derived from the same table) as a readable check.
    included = np.zeros(w.size)
    for (a, b), c in zip(pairs, counts, strict=True):
        included[[a, b]] += c
    exact = np.zeros(w.size)
    for (a, b), p in zip(pairs, probs, strict=True):
        exact[[a, b]] += p
    np.testing.assert_allclose(included / epochs, exact, atol=0.01)


def test_without_replacement_first_draw_follows_weights_and_rows_are_distinct(tmp_path):
    t = table_of(tmp_path, SKEWED)
    nnz = int((SKEWED > 0).sum())
    s = create_sampler(t, replacement=False, seed=5)
    assert len(s) == nnz
    first = np.zeros(SKEWED.size)
    for _ in range(20_000):
        idx = list(s)
        assert len(idx) == nnz and len(set(idx)) == nnz
        assert (SKEWED[idx] > 0).all()
        first[idx[0]] += 1
    nz = SKEWED > 0
    assert first[~nz].sum() == 0
    assert chisquare_p(first[nz], SKEWED[nz]) > P_MIN


def test_without_replacement_large_k_draws_distinct_rows():
    w = np.random.default_rng(0).random(100_000) ** 4
    s = create_sampler(w, 60_000, replacement=False, seed=0)
    idx = s.indices()
    assert idx.size == 60_000 and np.unique(idx).size == 60_000


# ----------------------------------------------------------------------------- epochs


def test_seeded_reproducible_and_fresh_each_epoch(tmp_path):
    t = table_of(tmp_path, SKEWED)
    a = create_sampler(t, 500, seed=3)
    b = create_sampler(t, 500, seed=3)
    a0, a1 = list(a), list(a)
    assert a0 != a1, "two epochs gave the same draw"
    assert (a.epoch, list(b)) == (2, a0)
    b.set_epoch(1)
    assert list(b) == a1
    assert b.epoch == 2
    assert list(create_sampler(t, 500, seed=4)) != a0
    a.set_epoch(0)
    np.testing.assert_array_equal(a.indices(), np.array(a0))
    assert a.epoch == 0, "indices() must not advance the epoch"


def test_seed_none_picks_a_seed_that_reproduces():
    w = np.arange(1.0, 20.0)
    s = create_sampler(w, 100)
    assert isinstance(s.seed, int) and s.seed >= 0
    assert list(s) == list(create_sampler(w, 100, seed=s.seed))


def test_default_num_samples_counts_nonzero_rows(tmp_path):
    t = table_of(tmp_path, SKEWED)
    nnz = int((SKEWED > 0).sum())
    assert len(create_sampler(t)) == nnz
    assert len(create_sampler(t, exclude_zero_weights=False)) == SKEWED.size
    idx = list(create_sampler(t, exclude_zero_weights=False, seed=0))
    assert len(idx) == SKEWED.size and (SKEWED[idx] > 0).all()


def test_is_a_torch_sampler_and_feeds_a_dataloader(tmp_path):
    t = table_of(tmp_path, SKEWED)
    s = t.create_sampler(40, seed=0)
    assert isinstance(s, torch.utils.data.Sampler) and isinstance(s, WeightedTableSampler)
    assert list(s) == list(create_sampler(t, 40, seed=0))
    s.set_epoch(0)
    ds = TensorDataset(torch.arange(SKEWED.size), torch.zeros(SKEWED.size))
    loader = DataLoader(ds, batch_size=16, sampler=s)
    batches = [x for x, _ in loader]
    assert len(loader) == 3 and [len(b) for b in batches] == [16, 16, 8]
    drawn = torch.cat(batches).numpy()
    assert (SKEWED[drawn] > 0).all()


# ----------------------------------------------------------------------------- errors


def test_errors_name_the_problem_and_the_fix(tmp_path):
    zeros = table_of(tmp_path, np.zeros(5), name="z")
    with pytest.raises(ValueError, match=r"all 5 weights are 0, so there is nothing to draw"):
        create_sampler(zeros)
    t = table_of(tmp_path, SKEWED)
    with pytest.raises(
        ValueError,
        match=r"num_samples=9 exceeds the 8 rows with a non-zero weight .*replacement=True",
    ):
        create_sampler(t, 9, replacement=False)
    with pytest.raises(ValueError, match=r"exceeds the 8 rows .*exclude_zero_weights=True"):
        create_sampler(t, replacement=False, exclude_zero_weights=False)
    with pytest.raises(ValueError, match=r"positive integer, but got num_samples=0"):
        create_sampler(t, 0)
    with pytest.raises(TypeError, match=r"positive integer, but got num_samples=2.5"):
        create_sampler(t, 2.5)
    with pytest.raises(ValueError, match=r"rank=2 is out of range for num_replicas=2; .*\[0, 1\]"):
        create_sampler(t, distributed=True, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match=r"rank=-1 is out of range"):
        create_sampler(t, distributed=True, num_replicas=2, rank=-1)
    with pytest.raises(ValueError, match=r"init_process_group first\) or explicit"):
        create_sampler(t, distributed=True)
    with pytest.raises(ValueError, match=r"only apply with distributed=True"):
        create_sampler(t, rank=0)
    with pytest.raises(ValueError, match=r"seed must be None or an integer >= 0"):
        create_sampler(t, seed=-1)
    with pytest.raises(ValueError, match=r"live=True needs a WeightTable"):
        create_sampler(SKEWED, live=True)
    with pytest.raises(ValueError, match=r"finite and >= 0; got nan at row 1"):
        create_sampler(np.array([1.0, np.nan]))


# ----------------------------------------------------------------------------- 2**24


def test_beyond_2_pow_24_rows_where_torch_raises():
    n = 2**24 + 10
    w = np.ones(n)
    w[-10:] = 1e6  # rows beyond index 2**24 must be reachable (and dominate)
    with pytest.raises(RuntimeError, match=r"^number of categories cannot exceed 2\^24$"):
        list(WeightedRandomSampler(w, 100))
    start = time.perf_counter()
    s = create_sampler(w, 1000, seed=0)
    idx = np.array(list(s))
    elapsed = time.perf_counter() - start
    assert idx.size == 1000 and idx.max() < n
    assert (idx >= 2**24).mean() > 0.3  # 1e7 of 1.68e7 + 1e7 total weight
    assert elapsed < 30


# ----------------------------------------------------------------------------- distributed


def test_distributed_shares_are_disjoint_equal_and_cover_one_draw():
    w = SKEWED
    shares = [
        create_sampler(w, 50, seed=8, distributed=True, num_replicas=3, rank=r) for r in range(3)
    ]
    assert [len(s) for s in shares] == [17, 17, 17]
    got = [s.indices(2) for s in shares]
    glob = _sampling.draw_with_replacement(_sampling.prepare(w), 51, _sampling.epoch_rng(8, 2))
    for r in range(3):
        np.testing.assert_array_equal(got[r], glob[r::3])
    # Without replacement: distinct rows across ranks while enough rows exist.
    shares = [
        create_sampler(w, 6, replacement=False, seed=8, distributed=True, num_replicas=2, rank=r)
        for r in range(2)
    ]
    a, b = (list(s) for s in shares)
    assert len(a) == len(b) == 3 and not set(a) & set(b)
    # Padding like DistributedSampler when the rows run out (8 rows, 3 ranks -> 9).
    shares = [
        create_sampler(w, replacement=False, seed=8, distributed=True, num_replicas=3, rank=r)
        for r in range(3)
    ]
    union = np.concatenate([s.indices() for s in shares])
    assert union.size == 9 and np.unique(union).size == 8


def test_distributed_seed_defaults_to_zero_on_every_rank():
    s = create_sampler(SKEWED, distributed=True, num_replicas=2, rank=1)
    assert s.seed == 0


# ----------------------------------------------------------------------------- live


def test_live_sampler_sees_edits_between_epochs(tmp_path):
    labels = np.repeat([0, 1, 2], 100)
    t = ww.WeightTable.from_arrays(labels=labels, name="live", store=str(tmp_path / "live"))
    live = create_sampler(t, seed=0, live=True)
    frozen = create_sampler(t, seed=0)
    loader = DataLoader(TensorDataset(torch.arange(300)), batch_size=50, sampler=live)
    assert len(loader) == 6
    first = torch.cat([x for (x,) in loader]).numpy()
    assert set(labels[first]) == {0, 1, 2}
    t.set_weights("label == 1", 0, message="exclude class 1")
    assert len(live) == 200 and len(loader) == 4, "len must follow the next epoch"
    second = torch.cat([x for (x,) in loader]).numpy()
    assert second.size == 200 and set(labels[second]) == {0, 2}
    assert live.revision == t.revision
    assert len(frozen) == 300 and 1 in set(labels[list(frozen)])


def test_live_sampler_picks_up_another_processes_commit(tmp_path):
    store = str(tmp_path / "shared")
    labels = np.repeat([0, 1], 50)
    t = ww.WeightTable.from_arrays(labels=labels, name="shared", store=store)
    s = create_sampler(t, 1000, seed=0, live=True)
    it = iter(s)
    assert 1 in {labels[i] for i in it}
    run_python(
        f"""
        import weightwidget as ww
        t = ww.WeightTable.open({store!r})
        t.set_weights("label == 0", 0, message="from a script")
        """
    )
    # an explicit num_samples fixes the length; the next epoch reads the new revision
    assert len(s) == 1000
    assert {int(labels[i]) for i in s} == {1}


def test_len_is_stable_during_a_live_epoch(tmp_path):
    t = table_of(tmp_path, np.ones(30))
    s = create_sampler(t, seed=0, live=True)
    it = iter(s)
    next(it)
    t.set_weights(slice(0, 10), 0)
    assert len(s) == 30, "an epoch in progress keeps its length"
    rest = list(it)
    assert len(rest) == 29
    assert len(s) == 20


# ----------------------------------------------------------------------------- loss weights


def test_sample_weight_in_dataset_order_and_normalized(tmp_path):
    t = table_of(tmp_path, SKEWED)
    w = sample_weight(t)
    np.testing.assert_array_equal(w, SKEWED)
    np.testing.assert_array_equal(t.sample_weight(), SKEWED)
    np.testing.assert_array_equal(t.sample_weight(normalize=True), sample_weight(t, normalize=True))
    assert w.flags.writeable and not np.shares_memory(w, t.weights)
    n = sample_weight(t, normalize=True)
    assert math.isclose(n[SKEWED > 0].mean(), 1.0)
    assert (n[SKEWED == 0] == 0).all()
    np.testing.assert_allclose(n * SKEWED[SKEWED > 0].mean(), SKEWED)
    zeros = table_of(tmp_path, np.zeros(3), name="z")
    with pytest.raises(ValueError, match=r"cannot normalize: all weights are 0"):
        sample_weight(zeros, normalize=True)


def test_weighted_dataset_yields_x_y_w(tmp_path):
    t = table_of(tmp_path, SKEWED)
    ds = TensorDataset(torch.arange(SKEWED.size) * 10, torch.arange(SKEWED.size) % 3)
    wds = WeightedDataset(ds, t)
    x, y, w = wds[5]
    assert (int(x), int(y), float(w)) == (50, 2, 3.0)
    xb, yb, wb = next(iter(DataLoader(wds, batch_size=4)))
    assert wb.dtype == torch.float32
    assert xb.tolist() == [0, 10, 20, 30] and yb.tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(wb.numpy(), SKEWED[:4])
    t.set_weights(5, 9.0)
    assert float(wds[5][2]) == 3.0
    wds.refresh()
    assert float(wds[5][2]) == 9.0
    with pytest.raises(ValueError, match=r"the dataset has 3 items but the table has 12"):
        WeightedDataset(TensorDataset(torch.zeros(3)), t)


def test_weighted_mean_loss_torch_and_numpy():
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    w = torch.tensor([0.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    out = weighted_mean_loss(losses, w)
    assert out.dtype == torch.float32
    assert math.isclose(out.item(), (2 + 12) / 4)
    out.backward()
    np.testing.assert_allclose(losses.grad.numpy(), [0, 0.25, 0, 0.75])
    assert math.isclose(weighted_mean_loss(losses, w, denominator="count").item(), 14 / 4)
    zero = weighted_mean_loss(losses, torch.zeros(4))
    assert zero.item() == 0.0
    assert math.isclose(weighted_mean_loss([1.0, 3.0], [1.0, 3.0]), 2.5)
    with pytest.raises(ValueError, match=r"same shape; got \(4,\) and \(3,\)"):
        weighted_mean_loss(losses, torch.ones(3))
    with pytest.raises(ValueError, match=r"denominator must be 'weight_sum' or 'count'"):
        weighted_mean_loss(losses, w, denominator="mean")


def test_import_weightwidget_does_not_import_torch_or_tensorflow():
    mods = run_json(
        """
        import json, sys
        import weightwidget, weightwidget._sampling
        print(json.dumps([m for m in ("torch", "tensorflow") if m in sys.modules]))
        """
    )
    assert mods == []
    assert "weightwidget.samplers" in sys.modules


# ----------------------------------------------------------------------------- exact ranking


@given(
    keys=st.lists(
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.sampled_from([0.0, 1.0, 1.0 + 2**-52, 1e-300, 2.5]),  # exact and near ties
        ),
        min_size=1,
        max_size=300,
    ),
    frac=st.floats(0.0, 1.0),
)
def test_smallest_keys_is_a_stable_argsort(keys, frac):
    keys = np.array(keys, dtype=np.float64)
    k = max(1, round(frac * keys.size))
    got = _sampling.smallest_keys(keys, k)
    np.testing.assert_array_equal(got, np.argsort(keys, kind="stable")[:k])


@pytest.mark.parametrize("k", [1, 999, 40_000, 100_000])
def test_smallest_keys_untie_truncated_keys_exactly(k):
    # 1e5 keys spread over 1e300: far more key bits than fit beside a position, and
    # runs of keys equal to the last few bits, so truncation ties are common
    rng = np.random.default_rng(k)
    keys = rng.standard_exponential(100_000) * 10.0 ** rng.integers(-150, 150, 100_000)
    keys[::3] = 1.0 + rng.integers(0, 2**12, keys[::3].size) * 2**-52
    np.testing.assert_array_equal(
        _sampling.smallest_keys(keys, k), np.argsort(keys, kind="stable")[:k]
    )


# ----------------------------------------------------------------------------- the protocol


class FakeSource:
    """A WeightSource that is not a WeightTable, with missing labels (code -1)."""

    def __init__(self, weights, codes):
        self._weights = np.asarray(weights, dtype=np.float64)
        self._codes = np.asarray(codes, dtype=np.int64)
        self._revision = 0

    @property
    def weights(self):
        return self._weights

    @property
    def label_codes(self):
        return self._codes

    @property
    def classes(self):
        return np.arange(max(int(self._codes.max()) + 1, 1))

    @property
    def revision(self):
        return self._revision

    def latest(self):
        return self

    def commit(self, weights):
        self._weights = np.asarray(weights, dtype=np.float64)
        self._revision += 1


def _partly_labelled(n=40, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.gamma(0.7, size=n)
    w[::9] = 0.0
    codes = rng.integers(0, 3, n)
    codes[rng.random(n) < 0.3] = -1
    w[codes < 0] *= 50  # heavy: if unlabelled rows leaked in, the tests would see them
    return FakeSource(w, codes), np.where(codes >= 0, w, 0.0)


def test_the_protocol_is_what_samplers_read():
    src, _ = _partly_labelled()
    members = {n for n in vars(protocol.WeightSource) if not n.startswith("_")}
    assert members == set(protocol._MEMBERS)  # the runtime check follows the Protocol
    assert is_weight_source(src) and is_weight_source(ww.WeightTable)
    assert as_source(src) is src
    plain = as_source([1.0, 2.0])
    assert isinstance(plain, ArrayWeights) and plain.revision == 0 and plain.latest() is plain
    assert plain.label_codes.tolist() == [0, 0] and plain.classes.tolist() == [0]

    class Partial:
        weights = np.ones(3)
        revision = 0

    with pytest.raises(TypeError, match=r"Partial is not a WeightSource: it lacks label_codes"):
        create_sampler(Partial())
    with pytest.raises(TypeError, match=r"open it first with WeightTable.open"):
        create_sampler("runs/store")
    caller = np.ones(4)
    create_sampler(caller)
    assert caller.flags.writeable, "wrapping an array must not freeze the caller's array"


def test_unlabelled_rows_are_never_drawn_and_labelled_rows_follow_the_weights():
    src, eff = _partly_labelled()
    inc = eff > 0
    counts = np.bincount(create_sampler(src, 200_000, seed=3).indices(), minlength=eff.size)
    assert counts[~inc].sum() == 0, "an unlabelled or weight-0 row was drawn"
    assert chisquare_p(counts[inc], eff[inc]) > P_MIN
    # without replacement: each epoch is a permutation of the included rows
    s = create_sampler(src, replacement=False, seed=4)
    assert len(s) == inc.sum()
    first = np.zeros(eff.size)
    for _ in range(6000):
        idx = s.indices(s.epoch)
        s.epoch += 1
        assert np.array_equal(np.sort(idx), np.flatnonzero(inc))
        first[idx[0]] += 1
    assert chisquare_p(first[inc], eff[inc]) > P_MIN
    # the other options and exports agree
    assert set(create_sampler(src, 5000, weighted=False, seed=0).indices()) == set(
        np.flatnonzero(inc)
    )
    labelled = np.asarray(src.label_codes) >= 0
    assert len(create_sampler(src, exclude_zero_weights=False)) == labelled.sum()
    np.testing.assert_array_equal(sample_weight(src), eff)
    assert (sample_weight(src, normalize=True)[~labelled] == 0).all()
    wds = WeightedDataset(TensorDataset(torch.zeros(eff.size)), src)
    np.testing.assert_array_equal(wds[int(np.flatnonzero(~labelled)[0])][1].item(), 0.0)


BIG = np.array([1e308, 1e308, 1.0, 0.0, 2.0])  # every weight finite, the sum is not


@pytest.mark.parametrize(
    "make",
    [
        lambda w: create_sampler(w),
        lambda w: create_sampler(w, replacement=False),
        lambda w: create_sampler(w, weighted=False),
        lambda w: sample_weight(w, normalize=True),
        lambda w: sample_weight(w),
        lambda w: WeightedDataset(TensorDataset(torch.zeros(BIG.size)), w),
    ],
    ids=["with", "without", "unweighted", "normalize", "sample_weight", "dataset"],
)
def test_weights_summing_to_infinity_are_refused_by_every_consumer(make):
    with pytest.raises(ValueError, match=r"weights sum to infinity \(the largest is 1e\+308\)"):
        make(BIG)
    with pytest.raises(ValueError, match=r"sum to infinity"):
        make(FakeSource(BIG, np.zeros(BIG.size)))


# ----------------------------------------------------------------------------- options


DESIGN = [  # DESIGN.md: create_sampler(num_samples=None, *, ...)
    ("num_samples", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ("replacement", inspect.Parameter.KEYWORD_ONLY, True),
    ("exclude_zero_weights", inspect.Parameter.KEYWORD_ONLY, True),
    ("seed", inspect.Parameter.KEYWORD_ONLY, None),
    ("live", inspect.Parameter.KEYWORD_ONLY, False),
    ("distributed", inspect.Parameter.KEYWORD_ONLY, False),
    ("num_replicas", inspect.Parameter.KEYWORD_ONLY, None),
    ("rank", inspect.Parameter.KEYWORD_ONLY, None),
    ("weighted", inspect.Parameter.KEYWORD_ONLY, True),
    ("shuffle", inspect.Parameter.KEYWORD_ONLY, True),
    ("repeat_by_weight", inspect.Parameter.KEYWORD_ONLY, False),
]


@pytest.mark.parametrize(
    "fn", [ww.WeightTable.create_sampler, create_sampler, WeightedTableSampler]
)
def test_every_entry_point_has_the_design_signature_and_documents_every_option(fn):
    params = list(inspect.signature(fn).parameters.values())[1:]  # after self / table
    assert [(p.name, p.kind, p.default) for p in params] == DESIGN
    doc = fn.__doc__
    for name, _, default in DESIGN:
        assert re.search(rf"^\s*{name} : \w+, default={default}$", doc, re.M), name
    assert "{options}" not in doc
    assert [f.name for f in dataclasses.fields(SamplerOptions)] == [d[0] for d in DESIGN]


def test_option_errors_name_the_option(tmp_path):
    t = table_of(tmp_path, SKEWED)
    with pytest.raises(TypeError, match=r"'replacment' \(did you mean 'replacement'\?\)"):
        t.create_sampler(replacment=False)
    with pytest.raises(TypeError, match=r"shuffle must be True or False; got shuffle='no'"):
        create_sampler(t, shuffle="no")
    with pytest.raises(ValueError, match=r"repeat_by_weight=True cannot be combined with num_sam"):
        create_sampler(t, 5, repeat_by_weight=True)
    with pytest.raises(ValueError, match=r"with replacement=False, weighted=False: each epoch"):
        create_sampler(t, repeat_by_weight=True, replacement=False, weighted=False)
    with pytest.raises(ValueError, match=r"whole numbers .* got 0\.01 at row 4 \(and 2 more\)"):
        create_sampler(t, repeat_by_weight=True)
    assert "weighted=False" in repr(create_sampler(t, weighted=False, seed=0))


OPTION_SETS = [
    {},
    {"replacement": False},
    {"shuffle": False},
    {"replacement": False, "shuffle": False},
    {"weighted": False},
    {"weighted": False, "replacement": False},
    {"weighted": False, "shuffle": False},
    {"repeat_by_weight": True},
    {"repeat_by_weight": True, "shuffle": False},
]
COUNTS = np.random.default_rng(1).integers(0, 4, 150_001).astype(float)  # > 2 draw chunks


@pytest.mark.parametrize("opts", OPTION_SETS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("replicas", [1, 3])
def test_iteration_yields_indices_and_ranks_share_one_sequence(opts, replicas):
    samplers = [
        create_sampler(COUNTS, seed=2, **opts)
        if replicas == 1
        else create_sampler(COUNTS, seed=2, distributed=True, num_replicas=replicas, rank=r, **opts)
        for r in range(replicas)
    ]
    shares = []
    for s in samplers:
        s.set_epoch(1)
        got = list(s)
        np.testing.assert_array_equal(got, s.indices(1))  # lazily chunked == materialised
        assert len(got) == len(s)
        shares.append(np.array(got))
    assert len({len(x) for x in shares}) == 1, "shares must be equal"
    plan = samplers[0]._plan
    total = len(shares[0]) * replicas
    glob = np.empty(total, dtype=np.int64)
    for r, x in enumerate(shares):
        glob[r::replicas] = x  # the shares interleave into the one global sequence
    ref = _sampling.epoch_sequence(plan, total, _sampling.epoch_rng(2, 1))
    np.testing.assert_array_equal(glob, ref)
    head = glob[: plan.num_samples]
    assert (COUNTS[head] > 0).all()
    if opts.get("repeat_by_weight"):
        np.testing.assert_array_equal(np.bincount(head, minlength=COUNTS.size), COUNTS)
    elif not opts.get("replacement", True) or opts == {"weighted": False, "shuffle": False}:
        assert np.unique(head).size == head.size == (COUNTS > 0).sum()


def test_shuffle_false_yields_the_documented_deterministic_order():
    w = SKEWED
    included = np.flatnonzero(w > 0).tolist()
    # unweighted: the included rows in row order; the seed is unused; cycling past the end
    for seed in (1, 2):
        assert list(create_sampler(w, weighted=False, shuffle=False, seed=seed)) == included
    assert list(create_sampler(w, 20, weighted=False, shuffle=False)) == (included * 3)[:20]
    assert (
        list(create_sampler(w, 5, replacement=False, weighted=False, shuffle=False))
        == (included[:5])
    )
    # weighted: the rows the shuffled epoch draws (same seed and epoch), sorted by row id
    for replacement in (True, False):
        a = create_sampler(w, 6, replacement=replacement, seed=9)
        b = create_sampler(w, 6, replacement=replacement, seed=9, shuffle=False)
        for e in range(3):
            assert b.indices(e).tolist() == sorted(a.indices(e).tolist())
    # repeat_by_weight: row i, w_i times, in row order
    counts = np.array([0.0, 2.0, 1.0, 0.0, 3.0])
    assert list(create_sampler(counts, repeat_by_weight=True, shuffle=False)) == [1, 1, 2, 4, 4, 4]
    # distributed: rank r takes positions r, r + R, ... of that order (padded by cycling)
    shares = [
        create_sampler(
            w, weighted=False, shuffle=False, distributed=True, num_replicas=3, rank=r
        ).indices()
        for r in range(3)
    ]
    assert [x.tolist() for x in shares] == [(included * 2)[r:9:3] for r in range(3)]


def test_weighted_false_is_uniform_over_included_rows():
    nz = SKEWED > 0
    counts = np.bincount(
        create_sampler(SKEWED, 160_000, weighted=False, seed=0).indices(), minlength=SKEWED.size
    )
    assert counts[~nz].sum() == 0
    assert chisquare_p(counts[nz], np.ones(nz.sum())) > P_MIN
    s = create_sampler(SKEWED, 3, replacement=False, weighted=False, seed=1)
    first = np.bincount([s.indices(e)[0] for e in range(8000)], minlength=SKEWED.size)
    assert first[~nz].sum() == 0
    assert chisquare_p(first[nz], np.ones(nz.sum())) > P_MIN


def test_repeat_by_weight_yields_each_row_w_times_in_a_uniform_shuffle():
    w = np.array([0.0, 3.0, 1.0, 0.0, 2.0, 5.0])
    s = create_sampler(w, repeat_by_weight=True, seed=0)
    assert len(s) == 11
    epochs = [list(s) for _ in range(5)]
    for idx in epochs:
        assert np.bincount(idx, minlength=w.size).tolist() == w.astype(int).tolist()
    assert len({tuple(e) for e in epochs}) > 1, "each epoch is shuffled afresh"
    # a uniform shuffle of the multiset puts row i first with probability w_i / sum(w)
    first = np.bincount([s.indices(e)[0] for e in range(6000)], minlength=w.size)
    assert chisquare_p(first[w > 0], w[w > 0]) > P_MIN


@pytest.mark.parametrize("opts", OPTION_SETS[1:], ids=lambda o: ",".join(o))
def test_options_follow_live_edits(tmp_path, opts):
    labels = np.repeat([0, 1, 2], 20)
    weights = np.tile([1.0, 2.0, 3.0, 1.0], 15)
    t = ww.WeightTable.from_arrays(
        labels=labels, name="lv", store=str(tmp_path / "lv"), weights=weights
    )
    s = create_sampler(t, seed=0, live=True, **opts)
    before = np.array(list(s))
    assert set(labels[before]) == {0, 1, 2}
    t.set_weights("label == 1", 0, message="exclude class 1")
    assert len(s) == (sum(weights[labels != 1]) if opts.get("repeat_by_weight") else 40)
    after = np.array(list(s))
    assert after.size == len(s) and set(labels[after]) == {0, 2}
