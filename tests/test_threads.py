"""Threads in the draws with replacement: the draws of one thread, and no thread left behind.

Large epochs are drawn by a producer thread and helpers a few blocks ahead of
the consumer (``weightwidget._threads``). The thresholds are lowered here so
that small inputs take the threaded path, with uneven splits and blocks.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from weightwidget import _sampling, _threads
from weightwidget.samplers import create_sampler


def weightwidget_threads() -> list[threading.Thread]:
    """The threads of the draws (the table's background sort has a pool of its own)."""
    names = ("weightwidget-draws", "weightwidget-worker")
    return [t for t in threading.enumerate() if t.name.startswith(names)]


@pytest.fixture
def small_blocks(monkeypatch):
    """Thread the draws from 1,000 draws on, in blocks of 3 chunks."""
    monkeypatch.setattr(_sampling, "_THREADED_DRAWS", 1000)
    monkeypatch.setattr(_sampling, "_BLOCK", 3 * 256)


def skewed(n: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng(seed).random(n) ** 3
    w[::7] = 0.0
    w[5::11] *= 1e6  # a few heavy rows that span many buckets
    return w


def draws(prep: _sampling.Prepared, k: int, seed: int, chunk: int = 256) -> np.ndarray:
    pieces = [p.copy() for _, p in _sampling._draws(prep, k, np.random.default_rng(seed), chunk)]
    return np.concatenate(pieces)


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_threaded_draws_equal_one_thread_and_the_inverse_cdf(monkeypatch, small_blocks, threads):
    w = skewed(5_003)
    monkeypatch.setenv(_threads.ENV, "1")
    prep = _sampling.prepare(w)
    alone = draws(prep, 10_007, seed=3)
    monkeypatch.setenv(_threads.ENV, str(threads))
    together = draws(prep, 10_007, seed=3)
    np.testing.assert_array_equal(together, alone)
    u = np.random.default_rng(3).random(10_007)
    np.testing.assert_array_equal(alone, np.searchsorted(prep.cdf, u * prep.cdf[-1], side="right"))
    assert (w[together] > 0).all()
    assert not weightwidget_threads(), "a worker thread outlived the epoch"


def test_a_sampler_epoch_is_the_same_with_and_without_threads(monkeypatch, small_blocks):
    w = skewed(4_000, seed=1)
    monkeypatch.setenv(_threads.ENV, "1")
    alone = list(create_sampler(w, 9_000, seed=7))
    monkeypatch.setenv(_threads.ENV, "2")
    sampler = create_sampler(w, 9_000, seed=7)
    assert list(sampler) == alone
    assert not weightwidget_threads()


def test_stopping_an_epoch_early_stops_the_threads(monkeypatch, small_blocks):
    monkeypatch.setenv(_threads.ENV, "3")
    prep = _sampling.prepare(skewed(3_000))
    gen = _sampling._draws(prep, 50_000, np.random.default_rng(0), 256)
    next(gen)
    assert weightwidget_threads(), "the threaded path was not taken"
    gen.close()
    assert not weightwidget_threads()
    it = iter(create_sampler(skewed(3_000), 50_000, seed=0))
    head = [next(it) for _ in range(10)]
    del it  # dropped mid-epoch, as a DataLoader iterator that is abandoned
    assert len(head) == 10 and not weightwidget_threads()


def test_an_error_in_a_worker_reaches_the_consumer(monkeypatch, small_blocks):
    monkeypatch.setenv(_threads.ENV, "2")
    prep = _sampling.prepare(skewed(3_000))
    calls = {"n": 0}
    real = _sampling._inverse_cdf

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise MemoryError("no room for the scratch")
        return real(*args, **kwargs)

    monkeypatch.setattr(_sampling, "_inverse_cdf", failing)
    with pytest.raises(MemoryError, match="no room"):
        draws(prep, 50_000, seed=0)
    assert not weightwidget_threads()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(_threads.ENV, value)
    with pytest.raises(ValueError, match=f"WEIGHTWIDGET_NUM_THREADS='{value}'.*positive integer"):
        _threads.count()


def test_thread_count_defaults_to_the_usable_cpus(monkeypatch):
    monkeypatch.delenv(_threads.ENV, raising=False)
    assert 1 <= _threads.count() <= 4
    monkeypatch.setenv(_threads.ENV, " 7 ")
    assert _threads.count() == 7


def test_workers_finish_every_call_before_raising():
    finished = []
    gate = threading.Event()

    def work(i):
        if i == 0:
            raise RuntimeError("first call failed")
        gate.wait(5)
        finished.append(i)

    with _threads.Workers(2) as workers:
        threading.Timer(0.2, gate.set).start()
        with pytest.raises(RuntimeError, match="first call failed"):
            workers.run(work, [(0,), (1,), (2,)])
        assert sorted(finished) == [1, 2], "run() returned while helpers were still writing"
        with pytest.raises(ValueError, match="4 calls for 2 helper threads"):
            workers.run(work, [(1,)] * 4)
    assert not weightwidget_threads()


@pytest.mark.parametrize("threads", ["1", "3"])
def test_zeros_and_copy_give_writable_arrays_whatever_the_threads(monkeypatch, threads):
    monkeypatch.setattr(_threads, "_PARALLEL_ZEROS_BYTES", 1024)
    monkeypatch.setenv(_threads.ENV, threads)
    for size, dtype in [(10_001, np.float64), (4_099, np.int32), (3, np.int64)]:
        z = _threads.zeros(size, dtype=dtype)
        assert z.dtype == dtype and z.shape == (size,) and not z.any()
        z[-1] = 5
        values = np.arange(size, dtype=dtype)
        c = _threads.copy(values)
        np.testing.assert_array_equal(c, values)
        c[0] = 9  # a copy: the original is untouched
        assert values[0] == 0 and z[-1] == 5


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_each_makes_every_call_whatever_the_threads(monkeypatch, threads):
    monkeypatch.setenv(_threads.ENV, threads)
    out = np.zeros(7, dtype=np.int64)

    def put(i):
        out[i] = i + 1

    _threads.each(put, [(i,) for i in range(7)])  # more calls than threads
    np.testing.assert_array_equal(out, np.arange(1, 8))
    assert not weightwidget_threads()


def test_run_prepares_each_call_in_order_in_the_calling_thread():
    prepared, started = [], []
    caller = threading.get_ident()

    def before(i):
        assert threading.get_ident() == caller
        prepared.append(i)

    def work(i):
        assert i in prepared, f"call {i} ran before it was prepared"
        started.append(i)

    with _threads.Workers(2) as workers:
        workers.run(work, [(0,), (1,), (2,)], before=before)
    assert prepared == [0, 1, 2] and sorted(started) == [0, 1, 2]


@pytest.mark.parametrize("k", [1, 255, 256, 257, 5_000, 100_003])
def test_blocks_cover_the_epoch_in_whole_chunks(k):
    lengths = list(_sampling._block_lengths(k, 8 * 256, 256))
    assert sum(lengths) == k
    assert all(n % 256 == 0 for n in lengths[:-1]), "a block but the last splits a chunk"
    assert max(lengths) <= 8 * 256 and lengths[0] == min(k, 256)
    assert lengths[:-1] == sorted(lengths[:-1])  # short first, then longer


@pytest.fixture
def switch_interval():
    """Start from the default switch interval and put back whatever was set before."""
    import sys

    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield sys
    sys.setswitchinterval(before)


def test_quick_switches_lower_the_interval_and_restore_it(switch_interval):
    sys = switch_interval
    with _threads.quick_switches():
        assert sys.getswitchinterval() == pytest.approx(_threads.QUICK_SWITCH_INTERVAL)
        with _threads.quick_switches():  # nested (two epochs at once): still low
            pass
        assert sys.getswitchinterval() == pytest.approx(_threads.QUICK_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(0.005)


def test_quick_switches_never_raise_it_and_keep_a_change_made_meanwhile(switch_interval):
    sys = switch_interval
    sys.setswitchinterval(0.0002)  # the user's own, lower: left alone
    with _threads.quick_switches():
        assert sys.getswitchinterval() == pytest.approx(0.0002)
    assert sys.getswitchinterval() == pytest.approx(0.0002)
    sys.setswitchinterval(0.005)
    with _threads.quick_switches():
        sys.setswitchinterval(0.01)  # changed by someone else during the block: kept
    assert sys.getswitchinterval() == pytest.approx(0.01)


def test_an_epoch_draws_with_quick_switches_and_restores_the_interval(
    monkeypatch, small_blocks, switch_interval
):
    sys = switch_interval
    monkeypatch.setenv(_threads.ENV, "2")
    seen = []
    lookup = _sampling._lookup

    def recording(*args):
        seen.append(sys.getswitchinterval())
        lookup(*args)

    monkeypatch.setattr(_sampling, "_lookup", recording)
    prep = _sampling.prepare(skewed(3_000))
    draws(prep, 10_000, seed=1)
    assert seen and max(seen) == pytest.approx(_threads.QUICK_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == pytest.approx(0.005)
    assert not weightwidget_threads()
