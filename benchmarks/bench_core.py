"""Core benchmarks at 1,000,000 rows: commits, bytes per edit, open, filter, memory.

Run: ``python -m benchmarks.bench_core`` (or ``python -m benchmarks`` for everything).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

import weightwidget as ww
from weightwidget import query

from ._common import print_table, row, timeit

N = 1_000_000


def _columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "labels": rng.choice(10, size=n, p=np.r_[[0.3, 0.2], np.full(8, 0.5 / 8)]),
        "loss": rng.gamma(2.0, 1.0, size=n),
        "confidence": rng.random(n).astype(np.float32),
    }


def _newest_revision_bytes(path: Path) -> int:
    revs = sorted((path / "revisions").iterdir())
    return revs[-1].stat().st_size


def run(quick: bool = False) -> list[dict]:
    n = 100_000 if quick else N
    cols = _columns(n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        t = ww.WeightTable.from_arrays(
            labels=cols["labels"], store=path, loss=cols["loss"], confidence=cols["confidence"]
        )
        rng = np.random.default_rng(1)
        k = n // 10

        # 1. commit of a 100,000-row edit, one value per row (the larger delta form)
        edits = [
            (np.sort(rng.choice(n, size=k, replace=False)), rng.random(k) + 0.5) for _ in range(7)
        ]
        ours = timeit(lambda: t.set_weights(*edits[t.revision % 7]), repeat=7)
        weights_df = pd.DataFrame({"weight": t.weights})
        naive = timeit(lambda: weights_df.to_parquet(io.BytesIO()), repeat=5)
        rows.append(
            row(
                f"commit a {k:,}-row edit",
                ours * 1e3,
                "ms",
                "< 50 ms",
                "rewrite weight column as parquet",
                naive * 1e3,
            )
        )

        # 2. bytes written for a 100-row edit
        t.set_weights(rng.choice(n, size=100, replace=False), rng.random(100) + 0.5)
        size = _newest_revision_bytes(path)
        full = len(np.asarray(t.weights).tobytes())
        rows.append(
            row(
                "bytes written, 100-row edit",
                size / 1024,
                "KB",
                "< 8 KB",
                "full weights array",
                full / 1024,
            )
        )

        # 3. open a store that holds 1,000 revisions
        target_revs = 200 if quick else 1000
        while t.revision < target_revs:
            t.set_weights(rng.choice(n, size=100, replace=False), rng.random(100) + 0.5)
        opened = timeit(lambda: ww.WeightTable.open(path), repeat=5)
        check = ww.WeightTable.open(path)
        assert check.revision == t.revision and np.array_equal(check.weights, t.weights)
        (base,) = path.glob("base/*/columns.parquet")
        read_base = timeit(lambda: pd.read_parquet(base), repeat=5)
        rows.append(
            row(
                f"open a store with {t.revision:,} revisions",
                opened * 1e3,
                "ms",
                "< 300 ms",
                "pandas.read_parquet of the columns alone",
                read_base * 1e3,
            )
        )

        # 4. filter evaluation (uncached: straight through the parser and evaluator)
        text = "label == 3 and loss > 2"
        view = {"label": t.column("label"), "loss": t.column("loss")}
        filt = timeit(lambda: query.evaluate(text, view, n), repeat=7)
        df = pd.DataFrame({"label": cols["labels"], "loss": cols["loss"]})
        anchor = timeit(lambda: df.query(text), repeat=5)  # anchor only; never on user text
        rows.append(
            row(
                f"filter '{text}'",
                filt * 1e3,
                "ms",
                "< 50 ms",
                "pandas DataFrame.query",
                anchor * 1e3,
            )
        )

    # 5. peak memory over the raw columns, measured in a fresh process
    rows.extend(_memory_rows(n))
    return rows


_MEMORY_SCRIPT = """
import json, sys, tempfile, numpy as np
from pathlib import Path
phase, store, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
labels = rng.integers(0, 10, n)
loss = rng.gamma(2.0, 1.0, n)
conf = rng.random(n).astype(np.float32)
raw = labels.nbytes + loss.nbytes + conf.nbytes
import pandas as pd, pyarrow as pa, pyarrow.parquet  # imports are not the table's memory
import weightwidget as ww

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the RSS high-water mark (VmHWM): measure from here on
base = status("VmRSS")
if phase == "build":  # the notebook: build, 10 filtered edits, rebalance
    t = ww.WeightTable.from_arrays(labels=labels, store=store, loss=loss, confidence=conf)
    for i in range(10):
        t.set_weights(f"label == {i} and loss > 2", 0.5)
    t.balance()
elif phase == "open":  # a training script: open the store, sort by loss
    del labels, loss, conf
    t = ww.WeightTable.open(store)
    t.sort_order("loss")
else:  # the anchor: the same data through pandas and parquet
    df = pd.DataFrame({"label": labels, "loss": loss, "confidence": conf})
    df["weight"] = 1.0
    df.to_parquet(store + ".parquet")
    del df
    pd.read_parquet(store + ".parquet").sort_values("loss")
print(json.dumps((status("VmHWM") - base) / raw))
"""


def _memory_rows(n: int) -> list[dict]:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for phase in ("build", "open", "pandas"):
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(_MEMORY_SCRIPT),
                    phase,
                    str(Path(tmp) / "s"),
                    str(n),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            out[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
    anchor = "pandas: frame, parquet round trip, sort"
    return [
        row(
            "peak memory over raw columns: build + 11 edits",
            out["build"],
            "x",
            "< 2x",
            anchor,
            out["pandas"],
        ),
        row(
            "peak memory over raw columns: open + sort (new process)",
            out["open"],
            "x",
            "< 2x",
            anchor,
            out["pandas"],
        ),
    ]


def main() -> None:
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    rows = run(quick=quick)
    print_table(
        rows, title=f"weightwidget core benchmarks ({'quick' if quick else '1,000,000 rows'})"
    )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
