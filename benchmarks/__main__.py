"""Run every benchmark and print one table: ``python -m benchmarks [--quick]``.

Each row is one figure: ours, its target, and an anchor measured in the same run
(ratio = ours / anchor, so below 1 is better for times and sizes).
"""

from __future__ import annotations

import importlib
import sys
import time

from ._common import machine, print_table

SUITES = [
    ("core (table, store, filters)", "benchmarks.bench_core"),
    ("store at 10,000 revisions", "benchmarks.bench_store"),
    ("samplers", "benchmarks.bench_samplers"),
    ("widget", "benchmarks.bench_widget"),
    ("ingestion (from_pandas, open)", "benchmarks.bench_ingest"),
    ("curation", "benchmarks.bench_curation"),
]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    only = [a for a in argv if not a.startswith("-")]
    t0 = time.perf_counter()
    print(f"weightwidget benchmarks{' (quick)' if quick else ''} on {machine()}\n")
    for title, module in SUITES:
        if only and not any(o in module for o in only):
            continue
        start = time.perf_counter()
        rows = importlib.import_module(module).run(quick=quick)
        print_table(rows, title=f"## {title}  ({time.perf_counter() - start:.0f} s)")
        print()
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
