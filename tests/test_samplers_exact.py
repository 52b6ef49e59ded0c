"""Exactness of the fast draws in weightwidget._sampling against their reference methods.

With replacement the reference is the inverse CDF, ``np.searchsorted(cdf, u *
cdf[-1], side="right")``; the guide table (with the row ends packed into its
low bits) must give exactly that answer for every ``u``, including the
adversarial ones: bucket edges, row edges and their neighbouring doubles.
Without replacement the reference is a stable argsort of the
Efraimidis-Spirakis keys. Property tests run 100 examples by default and
thousands with ``HYPOTHESIS_PROFILE=thorough`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from weightwidget import _sampling

P_MIN = 0.001


def inverse_cdf(prep: _sampling.Prepared, u: np.ndarray) -> np.ndarray:
    """The fast lookup of ``u`` (uniforms in [0, 1)), as the draws run it."""
    scratch = _sampling._Scratch(u.size, prep.guide.dtype)
    return _sampling._inverse_cdf(prep, u.copy(), scratch).copy()


def reference(prep: _sampling.Prepared, u: np.ndarray) -> np.ndarray:
    return np.searchsorted(prep.cdf, u * prep.cdf[-1], side="right")


def edge_uniforms(prep: _sampling.Prepared, extra: np.ndarray) -> np.ndarray:
    """Uniforms on and beside every bucket edge and every row edge, plus ``extra``."""
    m, total = prep.cdf.size, prep.cdf[-1]
    points = np.concatenate([np.arange(m + 1) / m, prep.cdf / total, [0.0], extra])
    near = np.concatenate([points, np.nextafter(points, 0.0), np.nextafter(points, 1.0)])
    return near[(near >= 0.0) & (near < 1.0)]


weight = st.one_of(
    st.just(0.0),
    st.integers(1, 4).map(float),  # integer weights: row ends fall exactly on bucket edges
    st.floats(1e-300, 1e300),
    st.sampled_from([1e-300, 1e-12, 0.1, 1.0 / 3.0, 1e12]),
)
weights = st.lists(weight, min_size=1, max_size=300).filter(lambda w: 0 < sum(w) < 1e307)


@given(w=weights, seed=st.integers(0, 2**32 - 1))
def test_guide_lookup_equals_searchsorted_at_every_edge(w, seed):
    w = np.array(w)
    prep = _sampling.prepare(w)
    u = edge_uniforms(prep, np.random.default_rng(seed).random(500))
    got = inverse_cdf(prep, u)
    np.testing.assert_array_equal(got, reference(prep, u))
    assert (w[got] > 0).all(), "a weight-0 row was drawn"


@given(w=weights, seed=st.integers(0, 2**32 - 1), chunk=st.sampled_from([1, 2, 8, 64]))
def test_cdf_summed_in_two_halves_stays_exact(w, seed, chunk):
    # The build sums the two halves of the rows at once and adds the first half's
    # total to the second chunk by chunk; small chunks put the seam anywhere.
    w = np.array(w)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_sampling, "_BUILD_CHUNK", chunk)
        mp.setenv("WEIGHTWIDGET_NUM_THREADS", "1")
        alone = _sampling.prepare(w)
        mp.setenv("WEIGHTWIDGET_NUM_THREADS", "2")
        prep = _sampling.prepare(w)
    # the same whatever the threads: every rank of a distributed job draws alike
    np.testing.assert_array_equal(prep.cdf, alone.cdf)
    np.testing.assert_array_equal(prep.guide, alone.guide)
    cdf = prep.cdf
    assert (np.diff(cdf) >= 0).all(), "the cdf decreases at the seam"
    zero = np.flatnonzero(w[1:] == 0) + 1
    np.testing.assert_array_equal(cdf[zero], cdf[zero - 1])  # weight 0: an empty interval
    if cdf[-1] == np.cumsum(w)[-1]:  # not rescaled (see the tiny total)
        np.testing.assert_allclose(cdf, np.cumsum(w), rtol=1e-12, atol=0)
    u = edge_uniforms(prep, np.random.default_rng(seed).random(200))
    got = inverse_cdf(prep, u)
    np.testing.assert_array_equal(got, reference(prep, u))
    assert (w[got] > 0).all(), "a weight-0 row was drawn"


@pytest.mark.parametrize("case", ["int64 guide", "no fraction bits"])
def test_guide_lookup_is_exact_in_its_other_layouts(monkeypatch, case):
    # 2**30 rows and more take an int64 guide with 16 fraction bits; the guide of
    # 2**30 to 2**31 rows would have no spare bit. Both are too big for a test, so
    # the thresholds move instead.
    if case == "int64 guide":
        monkeypatch.setattr(_sampling, "_INT32_ROWS", 0)
    else:
        monkeypatch.setattr(_sampling, "_MAX_FRACTION_BITS", 0)
    rng = np.random.default_rng(3)
    w = rng.random(5000) ** 6
    w[rng.random(5000) < 0.2] = 0.0
    w[1000:1400] = 1.0  # exact bucket edges
    prep = _sampling.prepare(w)
    assert prep.guide.dtype == (np.int64 if case == "int64 guide" else np.int32)
    assert prep.guide_bits == (16 if case == "int64 guide" else 0)
    u = edge_uniforms(prep, rng.random(20_000))
    np.testing.assert_array_equal(inverse_cdf(prep, u), reference(prep, u))


def test_guide_lookup_is_exact_past_2_pow_24_rows():
    n = 2**24 + 10
    rng = np.random.default_rng(11)
    w = rng.random(n) ** 3
    w[rng.random(n) < 0.1] = 0.0
    w[-10:] = [0.0, 1e-9, 3.0, 0.0, 1.0, 1.0, 1.0, 1e6, 0.0, 2.0]  # rows beyond 2**24
    prep = _sampling.prepare(w)
    last = prep.cdf[-12:] / prep.cdf[-1]
    u = np.concatenate([rng.random(200_000), last, np.nextafter(last, 0.0)])
    u = u[u < 1.0]
    got = inverse_cdf(prep, u)
    np.testing.assert_array_equal(got, reference(prep, u))
    assert (got >= 2**24).any() and (w[got] > 0).all()


def test_tiny_total_is_rescaled_exactly():
    # m / total would overflow: the cdf is scaled by a power of two, which keeps
    # every comparison (and so every draw) as it was
    w = np.array([0.0, 3e-310, 1e-310, 0.0, 5e-311])
    prep = _sampling.prepare(w)
    assert 0.5 <= prep.cdf[-1] < 1.0
    u = edge_uniforms(prep, np.random.default_rng(0).random(1000))
    got = inverse_cdf(prep, u)
    np.testing.assert_array_equal(got, reference(prep, u))
    counts = np.bincount(got, minlength=w.size)
    assert counts[w == 0].sum() == 0


def test_with_replacement_chi_square_on_many_rows():
    # 2,000 skewed rows (zeros, a run of tiny weights, heavy rows), 4e6 draws
    rng = np.random.default_rng(2024)
    w = rng.gamma(0.3, size=2000)
    w[rng.random(2000) < 0.15] = 0.0
    w[500:700] = 1e-3
    w[::97] *= 40.0
    prep = _sampling.prepare(w)
    draws = _sampling.draw_with_replacement(prep, 4_000_000, np.random.default_rng(5))
    counts = np.bincount(draws, minlength=w.size)
    assert counts[w == 0].sum() == 0
    nz = w > 0
    expected = w[nz] / w.sum() * draws.size
    assert stats.chisquare(counts[nz], expected).pvalue > P_MIN


# ----------------------------------------------------------------------------- without


@given(
    keys=st.lists(
        st.one_of(
            st.floats(allow_nan=False, width=64),  # infinities included
            st.sampled_from([0.0, 1.0, 1.0 + 2**-52, 1e-300, np.inf, 1e308]),
        ),
        min_size=1,
        max_size=300,
    ),
    frac=st.floats(0.0, 1.0),
)
def test_smallest_keys_with_infinite_keys_is_a_stable_argsort(keys, frac):
    keys = np.array(keys, dtype=np.float64)
    k = max(1, round(frac * keys.size))
    got = _sampling.smallest_keys(keys, k)
    np.testing.assert_array_equal(got, np.argsort(keys, kind="stable")[:k])


def test_smallest_keys_ranks_many_infinite_keys_last():
    # a tenth of the keys +inf (rows that must come last), the others spread over 1e300
    rng = np.random.default_rng(1)
    keys = rng.standard_exponential(200_000) * 10.0 ** rng.integers(-150, 150, 200_000)
    keys[::10] = np.inf
    for k in (1, 50_000, 180_000, 200_000):
        np.testing.assert_array_equal(
            _sampling.smallest_keys(keys, k), np.argsort(keys, kind="stable")[:k]
        )


def efraimidis_spirakis(w: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Reference: the k non-zero rows with the smallest E / w (ties by row), in key order.

    ``E`` is the same standard exponential stream the draw uses: one value per
    position, a position being a row (weights mostly non-zero) or a non-zero row.
    """
    prep = _sampling.prepare(w, index=False)
    rows = np.arange(w.size) if prep.rows is None else prep.rows
    e = np.random.default_rng(seed).standard_exponential(rows.size)
    nz = w[rows] > 0
    e, wz = e[nz], w[rows][nz]
    # E / w, or for weights beyond 1e+-290 log(E) - log(w): the same order, no overflow
    keys = e / wz if prep.keys_in_range else np.log(e) - np.log(wz)
    ranked = rows[nz][np.argsort(keys, kind="stable")]
    return ranked[:k]


@given(
    w=st.lists(
        st.one_of(st.just(0.0), st.floats(1e-300, 1e300), st.sampled_from([1.0, 2.0, 1e-12])),
        min_size=1,
        max_size=200,
    ).filter(lambda w: 0 < sum(w) < 1e307),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_draws_without_replacement_are_the_smallest_keys(w, frac, seed):
    w = np.array(w)
    prep = _sampling.prepare(w, index=False)
    k = max(1, round(frac * prep.n_nonzero))
    got = _sampling.draw_without_replacement(prep, k, np.random.default_rng(seed))
    np.testing.assert_array_equal(got, efraimidis_spirakis(w, k, seed))


@pytest.mark.parametrize("zeros", [0.3, 0.8], ids=["mostly non-zero", "mostly zero"])
def test_without_replacement_ordered_pairs_follow_successive_draws(zeros):
    # P(first i, then j) = w_i / W * w_j / (W - w_i), for weights kept in place (few
    # zeros) and for weights gathered to the non-zero rows (many zeros)
    rng = np.random.default_rng(7)
    w = np.zeros(20)
    nz = rng.choice(20, size=round(20 * (1 - zeros)), replace=False)
    w[nz] = rng.choice([0.5, 1.0, 3.0, 8.0], size=nz.size)
    prep = _sampling.prepare(w, index=False)
    assert (prep.rows is None) == (zeros < 0.5)
    epochs = 40_000
    first = np.zeros(w.size)
    pair = np.zeros((w.size, w.size))
    for e in range(epochs):
        a, b = _sampling.draw_without_replacement(prep, 2, _sampling.epoch_rng(3, e))
        first[a] += 1
        pair[a, b] += 1
    assert first[w == 0].sum() == 0 and pair[:, w == 0].sum() == 0
    total = w.sum()
    expected = np.outer(w / total, w) / (total - w)[:, None]
    np.fill_diagonal(expected, 0.0)
    keep = expected > 0
    assert stats.chisquare(pair[keep], expected[keep] * epochs).pvalue > P_MIN
