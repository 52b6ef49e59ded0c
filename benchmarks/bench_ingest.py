"""Ingestion benchmarks: ``from_pandas`` and ``open`` beside pandas' own parquet I/O.

The frame is what issue 10 measured: an int label, a float32 column, a float64
column and a short text column (captions like ``"truck 553"``, about 60 % of
them distinct, in pandas' default string dtype; at 1M rows also as object dtype,
the default before pandas 3). Such text stays plain Arrow strings; a last frame
has a caption of 200 distinct values instead (``"truck 7"``), which is
dictionary-encoded (see :mod:`weightwidget._text`), so both representations'
ingestion is measured. Every figure is taken in a fresh process, and the anchor
(``df.to_parquet`` / ``pd.read_parquet`` of the same frame) in the same run.

Memory: each child builds the frame, then takes its resident size (VmRSS) as the
baseline and resets the kernel's high-water mark (``/proc/self/clear_refs``);
the figure is (VmHWM - baseline) / the frame's own size
(``df.memory_usage(deep=True)``): the extra memory the call needed on top of the
data the user already holds, counting numpy, Arrow's pool and Python objects alike.

Run: ``python -m benchmarks.bench_ingest [--quick]`` (quick skips 10M rows).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from ._common import print_table, row

_CHILD = """
import gc, json, sys, time
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet
import weightwidget as ww

phase, n, text, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
label = rng.integers(0, 10, n)
words = np.array(["cat", "dog", "bird", "fish", "horse", "frog", "deer", "ship", "truck", "plane"])
suffix = rng.integers(0, 20 if text == "few" else n, n)  # few: 200 distinct captions
caption = pc.binary_join_element_wise(
    pa.array(words[label]), pa.array(suffix).cast(pa.string()), " "
)
df = pd.DataFrame({
    "label": label,
    "score": rng.random(n).astype(np.float32),
    "loss": rng.gamma(2.0, 1.0, n),
    "caption": caption.to_numpy(zero_copy_only=False) if text == "object"
    else pd.array(caption, dtype="str"),
})
if text == "object":
    df["caption"] = df["caption"].astype(object)
del label, caption, suffix
frame = int(df.memory_usage(deep=True).sum())
if phase == "open":  # the store and the parquet file were written by an earlier child
    del df
gc.collect()
pa.default_memory_pool().release_unused()

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM: measure from here on
t0 = time.perf_counter()
if phase == "to_parquet":
    df.to_parquet(tmp + "/frame.parquet")
elif phase == "build":
    t = ww.WeightTable.from_pandas(df, label="label", store=tmp + "/store")
elif phase == "read_parquet":
    pd.read_parquet(tmp + "/frame.parquet")
else:
    t = ww.WeightTable.open(tmp + "/store")
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "memory": (status("VmHWM") - base) / frame}))
"""


def _child(phase: str, n: int, text: str, tmp: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), phase, str(n), text, tmp],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(n: int, text: str = "str") -> dict[str, dict[str, float]]:
    """Time and peak memory of to_parquet, from_pandas, read_parquet and open at ``n`` rows."""
    with tempfile.TemporaryDirectory() as tmp:
        return {
            phase: _child(phase, n, text, tmp)
            for phase in ("to_parquet", "build", "read_parquet", "open")
        }


def run(quick: bool = False) -> list[dict]:
    sizes = [1_000_000] if quick else [1_000_000, 10_000_000]
    got = {n: measure(n) for n in sizes}
    rows = []
    for n in sizes:
        m, label = got[n], f"{n // 1_000_000}M rows"
        rows.append(
            row(
                f"from_pandas, {label}",
                m["build"]["seconds"],
                "s",
                "within 3x",
                "df.to_parquet (same frame)",
                m["to_parquet"]["seconds"],
            )
        )
        rows.append(
            row(
                f"peak memory over the frame: from_pandas, {label}",
                m["build"]["memory"],
                "x",
                "< 2x",
                "df.to_parquet",
                m["to_parquet"]["memory"],
            )
        )
        rows.append(
            row(
                f"WeightTable.open, {label} (new process)",
                m["open"]["seconds"],
                "s",
                "-",
                "pd.read_parquet",
                m["read_parquet"]["seconds"],
            )
        )
    if len(sizes) == 2:
        small, big = got[sizes[0]], got[sizes[1]]
        rows.append(
            row(
                "from_pandas 10M / 1M time",
                big["build"]["seconds"] / small["build"]["seconds"],
                "x",
                "<= 12",
                "to_parquet 10M / 1M",
                big["to_parquet"]["seconds"] / small["to_parquet"]["seconds"],
            )
        )
    few_n = sizes[-1]
    few = measure(few_n, "few")
    rows.append(
        row(
            f"from_pandas, {few_n // 1_000_000}M rows, 200 distinct captions (dictionary)",
            few["build"]["seconds"],
            "s",
            "within 3x",
            "df.to_parquet (same frame)",
            few["to_parquet"]["seconds"],
        )
    )
    rows.append(
        row(
            f"peak memory over the frame: the same, {few_n // 1_000_000}M",
            few["build"]["memory"],
            "x",
            "< 2x",
            "df.to_parquet",
            few["to_parquet"]["memory"],
        )
    )
    obj = measure(1_000_000, "object")
    rows.append(
        row(
            "from_pandas, 1M rows, object-dtype text",
            obj["build"]["seconds"],
            "s",
            "within 3x",
            "df.to_parquet (same frame)",
            obj["to_parquet"]["seconds"],
        )
    )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    rows = run(quick=quick)
    print_table(rows, title=f"weightwidget ingestion benchmarks{' (quick)' if quick else ''}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
