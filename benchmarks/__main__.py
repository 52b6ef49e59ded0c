"""Run the benchmarks and print one table per group: ``python -m benchmarks [--quick] [GROUP ...]``.

Each row is one figure: ours, its target, and an anchor measured in the same run
(ratio = ours / anchor, so below 1 is better for times and sizes).

Examples
--------
::

    python -m benchmarks --help           # the options and the groups
    python -m benchmarks --quick          # every group, smaller sizes
    python -m benchmarks core widget      # two groups only
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence

#: Group name -> (title, module). The name is what the command line takes.
SUITES = {
    "core": ("core (table, store, filters)", "benchmarks.bench_core"),
    "store": ("store at 10,000 revisions", "benchmarks.bench_store"),
    "samplers": ("samplers", "benchmarks.bench_samplers"),
    "widget": ("widget", "benchmarks.bench_widget"),
    "ingest": ("ingestion (from_pandas, open)", "benchmarks.bench_ingest"),
    "scale": ("ten million rows end to end, beside one million", "benchmarks.bench_scale"),
    "curation": ("curation", "benchmarks.bench_curation"),
    "s3": ("team store on S3 (SeaweedFS) beside the local store", "benchmarks.bench_s3"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(
            "Measure weightwidget's figures and print each beside its target and an anchor "
            "measured in the same run. Without GROUP, every group runs (over a minute on "
            "2 cores; --quick takes less)."
        ),
        epilog="groups: " + ", ".join(f"{name} ({title})" for name, (title, _) in SUITES.items()),
    )
    parser.add_argument(
        "groups",
        nargs="*",
        metavar="GROUP",
        help=f"run only these groups ({', '.join(SUITES)}); default: all",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    return parser


def select(groups: Sequence[str]) -> list[str]:
    """The group names to run, in suite order; all when ``groups`` is empty.

    Raises
    ------
    ValueError
        An unknown group, naming the known ones.
    """
    unknown = [g for g in groups if g not in SUITES]
    if unknown:
        raise ValueError(
            f"unknown benchmark group {unknown[0]!r}; the groups are {', '.join(SUITES)}"
        )
    return [name for name in SUITES if not groups or name in groups]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        names = select(args.groups)
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        for name in names:
            print(f"{name:10} {SUITES[name][0]}")
        return 0
    from ._common import machine, print_table

    t0 = time.perf_counter()
    print(f"weightwidget benchmarks{' (quick)' if args.quick else ''} on {machine()}\n")
    for name in names:
        title, module = SUITES[name]
        start = time.perf_counter()
        rows = importlib.import_module(module).run(quick=args.quick)
        print_table(rows, title=f"## {title}  ({time.perf_counter() - start:.0f} s)")
        print()
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
