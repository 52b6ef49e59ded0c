"""Shared helpers: timing, rows of the results table, and printing."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def timeit(
    fn: Callable[[], Any], *, repeat: int = 5, setup: Callable[[], Any] | None = None
) -> float:
    """Median wall time of ``fn`` in seconds (``setup`` runs untimed before each call)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(
    name: str,
    value: float,
    unit: str,
    target: str,
    anchor: str = "",
    anchor_value: float | None = None,
) -> dict[str, Any]:
    """One line of the results table; ratio = ours / anchor (below 1: ours is smaller)."""
    ratio = None
    if anchor_value:
        ratio = value / anchor_value
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "target": target,
        "anchor": anchor,
        "anchor_value": anchor_value,
        "ratio": ratio,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "KB":
        return f"{value:,.1f} KB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:,.3g} {unit}"


def machine() -> str:
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"
    )


def print_table(rows: list[dict[str, Any]], title: str = "") -> None:
    if title:
        print(title)
    header = ["figure", "ours", "target", "anchor (same run)", "anchor", "ours/anchor"]
    lines = [header]
    for r in rows:
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.3g}"
        lines.append(
            [
                r["name"],
                fmt(r["value"], r["unit"]),
                r["target"],
                r.get("anchor") or "-",
                fmt(r.get("anchor_value"), r["unit"]) if r.get("anchor_value") else "-",
                ratio,
            ]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    for i, line in enumerate(lines):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)) + " |")
        if i == 0:
            print(sep)
