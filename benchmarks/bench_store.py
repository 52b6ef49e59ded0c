"""The store at 10,000 revisions (issue 10): size on disk, commit time as history grows,
opening the newest and a past revision, ``history()``, widget construction.

1,000,000 rows (100,000 with ``--quick``, which also stops at 2,000 revisions);
every edit sets 100 random rows, as a long curation session would.
Run: ``python -m benchmarks store``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import weightwidget as ww

from ._common import row, timeit


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _commit_ms(t: ww.WeightTable, rng: np.random.Generator, n: int, k: int) -> list[float]:
    times = []
    for _ in range(k):
        ids = rng.choice(n, size=100, replace=False)
        values = rng.choice([0.0, 0.5, 2.0, 3.0], size=100)
        t0 = time.perf_counter()
        t.set_weights(ids, values)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def run(quick: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    total = 2_000 if quick else 10_000
    rng = np.random.default_rng(0)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s"
        t = ww.WeightTable.from_arrays(
            labels=rng.integers(0, 10, n), store=path, loss=rng.gamma(2.0, 1.0, n)
        )
        base_bytes, _ = _size(path)
        early = _commit_ms(t, rng, n, 10)
        sizes = {}
        while t.revision < total:
            _commit_ms(
                t,
                rng,
                n,
                min(500, 1_000 - t.revision if t.revision < 1_000 else total - t.revision),
            )
            for mark in (1_000, total):
                if t.revision >= mark and mark not in sizes:
                    sizes[mark] = _size(path)
        late = _commit_ms(t, rng, n, 10)
        raw = n * 8  # one weights array
        for revs, (size, files) in sorted(sizes.items()):
            rows.append(
                row(
                    f"store size after {revs:,} edits ({files:,} files)",
                    size / 1e6,
                    "MB",
                    "< 40 MB" if revs == 10_000 else "-",
                    "base columns + one weights array",
                    (base_bytes + raw) / 1e6,
                )
            )
        rows.append(
            row(
                f"commit at revision {t.revision:,} (median of 10)",
                statistics.median(late),
                "ms",
                "within 1.5x of revision 10",
                "commit at revision 10 (same run)",
                statistics.median(early),
            )
        )
        (base,) = path.glob("base/*/columns.parquet")
        read_base = timeit(lambda: pd.read_parquet(base), repeat=3) * 1e3
        newest = timeit(lambda: ww.WeightTable.open(path), repeat=3) * 1e3
        rows.append(
            row(
                f"open the newest of {t.revision:,} revisions",
                newest,
                "ms",
                "< 300 ms",
                "pandas.read_parquet of the columns alone",
                read_base,
            )
        )
        middle = t.revision // 2
        past = timeit(lambda: ww.WeightTable.open(path, revision=middle), repeat=3) * 1e3
        check = ww.WeightTable.open(path, revision=middle)
        assert check.revision == middle
        rows.append(
            row(
                f"open revision {middle:,} (read-only)",
                past,
                "ms",
                "< 300 ms",
                "pandas.read_parquet of the columns alone",
                read_base,
            )
        )
        # each call on a table opened just before (untimed): its history not read yet
        opened: list[ww.WeightTable] = []

        def open_one() -> None:
            opened.append(ww.WeightTable.open(path))

        history_ms = timeit(lambda: opened[-1].history(), setup=open_one, repeat=5) * 1e3
        fresh = opened[-1]
        hist = fresh.history()
        assert len(hist) == t.revision + 1
        warm = timeit(fresh.history, repeat=5) * 1e3
        rows.append(
            row(
                f"history() of {len(hist):,} revisions, freshly opened",
                history_ms,
                "ms",
                "< 100 ms",
                "history() again, warm",
                max(warm, 1e-3),
            )
        )
        from weightwidget.widget import WeightWidget

        widget_ms = timeit(lambda: WeightWidget(opened[-1]), setup=open_one, repeat=5) * 1e3
        del opened[:-1]
        rows.append(
            row(
                f"widget construction on {t.revision:,} revisions (a freshly opened table)",
                widget_ms,
                "ms",
                "< 50 ms",
                "open alone",
                newest,
            )
        )
        t0 = time.perf_counter()
        report = fresh.compact(progress=False)
        compact_s = time.perf_counter() - t0
        size_after, files_after = _size(path)
        rows.append(
            row(
                f"store size after compact() ({files_after:,} files, {compact_s:.1f} s)",
                size_after / 1e6,
                "MB",
                "-",
                f"before compact() ({report['snapshots_before']} snapshots)",
                sizes[total][0] / 1e6,
            )
        )
    return rows


if __name__ == "__main__":
    from ._common import print_table

    print_table(run(quick=False), title="store at 10,000 revisions")
