"""Samplers: ours vs torch.utils.data.WeightedRandomSampler on the same weights.

One figure per size: construct the sampler and draw one full epoch of indices
(``list(sampler)``, num_samples = N, with replacement), in seconds, best of a
few runs for small N; one informational row without replacement. Target: ours
at least 3x faster at N = 1e7. At N = 1e8 torch cannot run (torch.multinomial
caps categories at 2**24); we report the error it raises beside our time.

    python benchmarks/bench_samplers.py          # full (about a minute on 2 cores)
    python benchmarks/bench_samplers.py --quick  # small sizes only
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from weightwidget.samplers import create_sampler

ANCHOR = "torch.utils.data.WeightedRandomSampler"


def _weights(n: int) -> np.ndarray:
    w = np.random.default_rng(0).random(n)
    w **= 3  # skewed, as after a rebalance
    return w


def _time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
        del out
    return best


def _ours(w: np.ndarray, replacement: bool = True) -> list[int]:
    return list(create_sampler(w, w.size, seed=0, replacement=replacement))


def _torch(w: np.ndarray, replacement: bool = True) -> list[int]:
    gen = torch.Generator().manual_seed(0)
    return list(WeightedRandomSampler(w, w.size, replacement=replacement, generator=gen))


def _label(n: int) -> str:
    return f"1e{round(np.log10(n))}" if n == 10 ** round(np.log10(n)) else f"{n:,}"


def run(quick: bool = False) -> list[dict]:
    """One row per size: ours (value) vs torch (anchor_value); ratio = ours / torch."""
    rows: list[dict] = []
    sizes = [100_000, 1_000_000] if quick else [1_000_000, 10_000_000]
    for n in sizes:
        w = _weights(n)
        repeat = 3 if n <= 1_000_000 else 2  # best of: the first run pays page faults
        ours = _time(lambda w=w: _ours(w), repeat)
        anchor = _time(lambda w=w: _torch(w), repeat)
        rows.append(
            {
                "name": f"sampler construct + 1 epoch, N={_label(n)}",
                "value": round(ours, 3),
                "unit": "s",
                "target": "<= 1/3 of torch (3x faster)" if n == 10_000_000 else "-",
                "anchor": ANCHOR,
                "anchor_value": round(anchor, 3),
                "ratio": round(ours / anchor, 3),
            }
        )
        del w
    # Without replacement (informational): torch also uses exponential keys here.
    n = sizes[-1]
    w = _weights(n)
    ours = _time(lambda: _ours(w, False), 1)
    anchor = _time(lambda: _torch(w, False), 1)
    rows.append(
        {
            "name": f"without replacement, construct + 1 epoch, N={_label(n)}",
            "value": round(ours, 3),
            "unit": "s",
            "target": "-",
            "anchor": f"{ANCHOR}(replacement=False)",
            "anchor_value": round(anchor, 3),
            "ratio": round(ours / anchor, 3),
        }
    )
    del w
    n = 2**24 + 10 if quick else 100_000_000
    w = _weights(n)
    try:
        list(WeightedRandomSampler(w, 10))
        anchor_note = f"{ANCHOR} (ran)"
    except RuntimeError as exc:  # "number of categories cannot exceed 2^24"
        anchor_note = f"{ANCHOR}: cannot run ({exc})"
    ours = _time(lambda: _ours(w), 1)
    rows.append(
        {
            "name": f"sampler construct + 1 epoch, N={_label(n)}",
            "value": round(ours, 3),
            "unit": "s",
            "target": "runs (torch cannot)",
            "anchor": anchor_note,
            "anchor_value": None,
            "ratio": None,
        }
    )
    return rows


def _print(rows: list[dict]) -> None:
    head = ("benchmark", "ours", "torch", "ratio", "target")
    table = [head]
    for r in rows:
        anchor = "-" if r["anchor_value"] is None else f"{r['anchor_value']:.3f} {r['unit']}"
        ratio = "-" if r["ratio"] is None else f"{1 / r['ratio']:.1f}x faster"
        table.append((r["name"], f"{r['value']:.3f} {r['unit']}", anchor, ratio, r["target"] or ""))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(wd) for c, wd in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["anchor_value"] is None:
            print(f"  note: {r['anchor']}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    _print(run(quick="--quick" in sys.argv))
