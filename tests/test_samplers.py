"""Samplers, loss weights and the torch Dataset wrapper (weightwidget.samplers, _sampling).

Statistical tests use fixed seeds and a chi-square goodness-of-fit test; each
asserts p > 0.001, i.e. a correct sampler fails one such test with probability
1/1000 for a random seed, and never for these fixed seeds.
"""

from __future__ import annotations

import itertools
import math
import sys
import time

import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import weightwidget as ww
from weightwidget import _sampling
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
