"""Samplers: ours beside torch and beside the numpy limit, measured in the same run.

Each figure is the best of a few runs (wall time, seconds; ours and its
anchors alternate, so both see the same load on a shared machine) of one epoch
from scratch: build the sampler from a weight vector and draw ``num_samples = N``
indices. Two ways to consume an epoch are measured, each against the anchor
that consumes it the same way:

* **beside torch**: iterate the epoch as a ``DataLoader`` does: its index
  stream is ``torch.utils.data.BatchSampler(sampler, batch_size, drop_last)``,
  which takes Python ints from the sampler into lists of ``batch_size``; ours
  against ``torch.utils.data.WeightedRandomSampler`` (``torch.multinomial``)
  on the same float64 weights;
* **beside the numpy limit**: the epoch as an index array (``sampler.indices()``),
  ours against the fastest exact method we know in plain numpy, each
  implemented here and measured in the same run: Walker's alias method (a
  vectorised Vose construction, then one uniform column and one uniform
  threshold per draw) and multinomial counts + ``np.repeat`` + shuffle for
  draws with replacement; Efraimidis-Spirakis keys ranked by ``np.argsort``
  (full epoch) or ``np.argpartition`` (``k << N``) without replacement.

Targets (issue 14): with replacement at 1e7 within 1.5x of the numpy limit;
without replacement at least 2x faster than torch at 1e7; with replacement at
1e8 under 10 s (torch cannot run there: ``torch.multinomial`` caps categories
at 2**24). Ratios are ours / anchor: below 1 means ours is faster. At 1e8 the
anchor is the floor of any sampler: the same ``BatchSampler`` iteration of
uniformly random ints made in chunks (``Generator.integers`` + ``tolist``), so
the ratio shows what exact weighted draws add; the CPU time of the process is
printed too, since the wall time of a shared machine depends on its load.

    python -m benchmarks samplers           # full (a few minutes on 2 busy cores)
    python -m benchmarks samplers --quick   # 1e6 rows and 2**24 + 10 only
    python -m benchmarks.bench_samplers --profile   # where the time goes at 1e8
"""

from __future__ import annotations

import collections
import gc
import itertools
import sys
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch.utils.data import BatchSampler, WeightedRandomSampler

from weightwidget.samplers import create_sampler

TORCH = "torch WeightedRandomSampler"
#: Indices per batch of the DataLoader whose index stream the "iterate" figures consume.
BATCH = 256


def _weights(n: int) -> np.ndarray:
    w = np.random.default_rng(0).random(n)
    w **= 3  # skewed, as after a rebalance
    w[::10] = 0.0  # and some rows excluded
    return w


def _best(*fns: Callable[[], object], repeat: int, cpu: list | None = None) -> list[float]:
    """Best wall time of each function; runs alternate, so all see the same machine load.

    With ``cpu``, the process CPU time of each function's best run is appended to it.
    """
    best = [float("inf")] * len(fns)
    best_cpu = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            out = fn()
            took = time.perf_counter() - start
            if took < best[i]:
                best[i], best_cpu[i] = took, time.process_time() - start_cpu
            del out
    if cpu is not None:
        cpu.extend(best_cpu)
    return best


def _consume(sampler: Iterable[int]) -> None:
    """Take the epoch as a DataLoader does: ints from the sampler into lists of BATCH."""
    collections.deque(BatchSampler(sampler, BATCH, drop_last=False), maxlen=0)


def _uniform_ints(n: int, k: int) -> Iterable[int]:
    """k uniformly random ints below n, made in chunks as a fast sampler would."""
    rng = np.random.default_rng(0)
    step = 1 << 16
    return itertools.chain.from_iterable(
        rng.integers(0, n, min(step, k - i)).tolist() for i in range(0, k, step)
    )


# ----------------------------------------------------------------------------- numpy anchors


def numpy_alias(w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Walker's alias method in plain numpy: a vectorised Vose build, then k draws."""
    n = w.size
    q = w * (n / w.sum())
    light = q < 1
    small, big = np.flatnonzero(light), np.flatnonzero(~light)
    deficit = 1 - q[small]
    # light row i takes its deficit from the first heavy row whose cumulative
    # surplus reaches the deficit accumulated before i (the "sweep" construction)
    serve = np.searchsorted(np.cumsum(q[big] - 1), np.cumsum(deficit) - deficit)
    serve = np.minimum(serve, big.size - 1)
    rest = q[big] - 1 - np.bincount(serve, weights=deficit, minlength=big.size)
    prob = q
    prob[big] = np.clip(1 + np.cumsum(rest), 0, 1)
    alias = np.arange(n)
    alias[small] = big[serve]
    alias[big[:-1]] = big[1:]
    col = rng.integers(0, n, k)
    return np.where(rng.random(k) < prob[col], col, alias[col])


def numpy_multinomial(w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial counts per row, each row repeated that often, then shuffled."""
    out = np.repeat(np.arange(w.size), rng.multinomial(k, w / w.sum()))
    rng.shuffle(out)
    return out


def numpy_es(w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Efraimidis-Spirakis without replacement: the k smallest E / w, in key order."""
    rows = np.flatnonzero(w)
    keys = rng.standard_exponential(rows.size) / w[rows]
    if k < rows.size:
        top = np.argpartition(keys, k - 1)[:k]
        return rows[top[np.argsort(keys[top])]]
    return rows[np.argsort(keys)]


# ----------------------------------------------------------------------------- ours, torch


def ours_array(w: np.ndarray, k: int, replacement: bool = True) -> np.ndarray:
    return create_sampler(w, k, seed=0, replacement=replacement).indices()


def ours_iterate(w: np.ndarray, k: int, replacement: bool = True) -> None:
    _consume(create_sampler(w, k, seed=0, replacement=replacement))


def torch_iterate(w: np.ndarray, k: int, replacement: bool = True) -> None:
    gen = torch.Generator().manual_seed(0)
    _consume(WeightedRandomSampler(w, k, replacement=replacement, generator=gen))


def torch_multinomial(w: np.ndarray, k: int) -> torch.Tensor:
    return torch.multinomial(torch.from_numpy(w), k, replacement=False)


def _label(n: int) -> str:
    return f"1e{round(np.log10(n))}" if n == 10 ** round(np.log10(n)) else f"{n:,}"


def _row(name: str, ours: float, target: str, anchor: str, anchor_value: float | None) -> dict:
    return {
        "name": name,
        "value": round(ours, 3),
        "unit": "s",
        "target": target,
        "anchor": anchor,
        "anchor_value": None if anchor_value is None else round(anchor_value, 3),
        "ratio": None if not anchor_value else round(ours / anchor_value, 3),
    }


def run(quick: bool = False) -> list[dict]:
    """Rows of figures; ratio = ours / anchor (below 1: ours is faster)."""
    torch.set_num_threads(2)
    rows: list[dict] = []
    n = 1_000_000 if quick else 10_000_000
    size = _label(n)
    # best of: the first run pays page faults, and the machine may be shared
    repeat = 3
    w = _weights(n)
    rng = np.random.default_rng(1)

    # with replacement, the epoch as an array: ours beside the numpy limit
    ours, alias, multi = _best(
        lambda: ours_array(w, n),
        lambda: numpy_alias(w, n, rng),
        lambda: numpy_multinomial(w, n, rng),
        repeat=repeat,
    )
    limit, how = min((alias, "alias"), (multi, "multinomial + repeat + shuffle"))
    title = f"with replacement, N={size}, build + 1 epoch as an array"
    target = "<= 1.5x the numpy limit" if not quick else "-"
    rows.append(_row(title, ours, target, f"numpy limit ({how})", limit))
    other = "multinomial + repeat + shuffle" if how == "alias" else "alias"
    rows.append(_row(f"  (numpy {other}, same run)", max(alias, multi), "-", "-", None))

    # with replacement, iterated as Python ints: ours beside torch
    ours, anchor = _best(  # torch takes 5 s or more per run here: best of 2
        lambda: ours_iterate(w, n), lambda: torch_iterate(w, n), repeat=2
    )
    title = f"with replacement, N={size}, build + iterate 1 epoch"
    rows.append(_row(title, ours, "-", TORCH, anchor))

    # without replacement, a full epoch: beside torch and beside numpy
    nnz = int(np.count_nonzero(w))
    ours, anchor = _best(
        lambda: ours_iterate(w, nnz, False), lambda: torch_iterate(w, nnz, False), repeat=repeat
    )
    title = f"without replacement, N={size}, build + iterate 1 full epoch"
    target = ">= 2x faster than torch (ratio <= 0.5)" if not quick else "-"
    rows.append(_row(title, ours, target, f"{TORCH}(replacement=False)", anchor))
    ours, anchor = _best(
        lambda: ours_array(w, nnz, False), lambda: numpy_es(w, nnz, rng), repeat=repeat
    )
    title = f"without replacement, N={size}, 1 full epoch as an array"
    rows.append(_row(title, ours, "-", "numpy E-S keys + argsort", anchor))

    # without replacement, k = N / 100: beside torch.multinomial and numpy argpartition
    k = n // 100
    ours, by_torch, by_numpy = _best(
        lambda: ours_array(w, k, False),
        lambda: torch_multinomial(w, k),
        lambda: numpy_es(w, k, rng),
        repeat=repeat,
    )
    title = f"without replacement, N={size}, k=N/100, as an array"
    rows.append(_row(title, ours, "-", "torch.multinomial(replacement=False)", by_torch))
    rows.append(_row(title, ours, "-", "numpy E-S keys + argpartition", by_numpy))
    del w
    gc.collect()

    # beyond torch's 2**24 categories
    n = 2**24 + 10 if quick else 100_000_000
    w = _weights(n)
    try:
        list(WeightedRandomSampler(w, 10))
        note = f"{TORCH} (ran)"
    except RuntimeError as exc:  # "number of categories cannot exceed 2^24"
        note = f"{TORCH}: cannot run ({exc})"
    cpu: list[float] = []
    ours, floor = _best(
        lambda: ours_iterate(w, n), lambda: _consume(_uniform_ints(n, n)), repeat=2, cpu=cpu
    )
    title = f"with replacement, N={_label(n)}, build + iterate 1 epoch"
    rows.append(_row(title, ours, "< 10 s (torch cannot run)" if not quick else "-", note, None))
    rows.append(_row(title, ours, "-", "floor: iterate uniform random ints alone", floor))
    rows.append(_row("  (the same, CPU time of the process)", cpu[0], "-", "floor", cpu[1]))
    return rows


def profile(n: int = 100_000_000) -> list[dict]:
    """Where the time of one epoch with replacement goes at ``n`` rows, phase by phase.

    The phases run as the sampler runs them: validate the weights, build
    (``prepare``: cumsum and guide table), then chunk by chunk draw (numpy
    only), turn the draws into Python ints (``tolist``) and take those as a
    DataLoader does; each chunk phase is summed over the epoch. Wall and CPU
    seconds (of the whole process); the rows add up to one epoch. The draws
    are made by threads ahead of the loop (see ``weightwidget._threads``), so
    the draw row is the time the loop waited for them, and its CPU time
    includes the threads' work done while the loop ran the later rows; set
    ``WEIGHTWIDGET_NUM_THREADS=1`` to see each phase alone.
    """
    from weightwidget import _sampling
    from weightwidget.protocol import as_source, effective_weights

    w = _weights(n)
    clock = [0.0, 0.0]
    sums: dict[str, list[float]] = {}

    def lap(name: str) -> None:
        now, now_cpu = time.perf_counter(), time.process_time()
        acc = sums.setdefault(name, [0.0, 0.0])
        acc[0] += now - clock[0]
        acc[1] += now_cpu - clock[1]
        clock[:] = [now, now_cpu]

    gc.collect()
    lap("start")
    weights = effective_weights(as_source(w))
    lap("validate the weights")
    prep = _sampling.prepare(weights)
    lap("build: cumsum + guide table")
    for _, chunk in _sampling._draws(prep, n, np.random.default_rng(0), 1 << 16):
        lap(f"draw {_label(n)} (numpy; with threads: waiting for them)")
        ints = chunk.tolist()
        lap("tolist (Python ints)")
        collections.deque(BatchSampler(ints, BATCH, drop_last=False), maxlen=0)
        del ints
        lap(f"take them as a DataLoader does (BatchSampler, {BATCH})")
    del sums["start"]
    rows = [_row(name, wall, "-", "CPU seconds", cpu) for name, (wall, cpu) in sums.items()]
    total, total_cpu = (sum(v[i] for v in sums.values()) for i in (0, 1))
    rows.append(_row("total", total, "-", "CPU seconds", total_cpu))
    return rows


if __name__ == "__main__":
    from ._common import print_table

    if "--profile" in sys.argv:
        print_table(profile(), title="## one epoch with replacement at 1e8, phase by phase")
    else:
        print_table(run(quick="--quick" in sys.argv), title="## samplers")
