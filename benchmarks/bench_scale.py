"""Ten million rows end to end (issue 14 point 1): each step at 10M beside 1M.

The frame is the ingestion benchmark's (an int label, a float32 and a float64
column, short mostly-distinct captions like ``"truck 553"`` in pandas' default
string dtype). Every step goes through the public API or the view module the
widget uses (:class:`weightwidget.view.TableView` for pages, sorts and filters):

1. ``from_pandas`` (beside ``df.to_parquet`` of the same frame, same process);
2. the first page (50 rows encoded as the widget sends them);
3. sort by ``loss``, then the first page (an O(n) top-k answers it);
4. sort by ``caption``, then the first page (Arrow's ``select_k`` over the text);
5. a full sort by ``caption`` (what the view finishes in the background while
   the top-k answers the first pages; here descending, never sorted before, and
   waited for; each background sort is waited for before the next step starts);
6. a filter (``label == 3 and loss > 2``) and its first page;
7. a text filter (``caption contains "77"``) and its first page;
8. the column summaries the widget asks for under the header, no filter;
9. a bulk edit of a filter (``set_weights``, one revision);
10. a sampler epoch (``create_sampler(seed=0).indices()``, with replacement);
11. a ``tf.data`` epoch of indices (``to_tf_dataset(np.arange(n))``, batches of
    8,192, iterated once).

Each size runs in a fresh process. Time is wall time; memory is the step's peak
over the frame: ``/proc/self/clear_refs`` resets the kernel's high-water mark
before the step, and (VmHWM - VmRSS before the step) / the frame's
``memory_usage(deep=True)`` is printed. The table prints each step at 10M beside
the same step at 1M: the ratio column is the scaling (10 is linear; below 10 is
better than linear).

Run: ``python -m benchmarks.bench_scale [--quick]`` (quick: 100k beside 1M).
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
from weightwidget import _serialize, view

n, tmp = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
label = rng.integers(0, 10, n)
words = np.array(["cat", "dog", "bird", "fish", "horse", "frog", "deer", "ship", "truck", "plane"])
caption = pc.binary_join_element_wise(
    pa.array(words[label]), pa.array(rng.integers(0, n, n)).cast(pa.string()), " "
)
df = pd.DataFrame({
    "label": label,
    "score": rng.random(n).astype(np.float32),
    "loss": rng.gamma(2.0, 1.0, n),
    "caption": pd.array(caption, dtype="str"),
})
del label, caption
frame = int(df.memory_usage(deep=True).sum())
out = {"frame": frame}


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024


def step(name, fn):
    gc.collect()
    pa.default_memory_pool().release_unused()
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM: the step's own peak from here
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    out[name] = {"seconds": seconds, "memory": (status("VmHWM") - base) / frame}
    print(f"{name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return result


step("to_parquet", lambda: df.to_parquet(tmp + "/frame.parquet"))
t = step("from_pandas", lambda: ww.WeightTable.from_pandas(df, label="label", store=tmp + "/s"))
spec = [{"name": "row", "kind": "numeric", "role": "row"}]
for name in t.columns:
    spec.append({"name": name, "kind": t.column_kind(name), "role": "data"})
spec.append({"name": "weight", "kind": "numeric", "role": "weight"})


def page(v):
    return _serialize.encode_rows(t, v.ids(0, 50), spec)


v = view.TableView(t)
step("first page", lambda: page(v))


def sort(by):
    v.set_sort(by, True)
    return page(v)


step("sort by loss + first page", lambda: sort("loss"))
view.sort_order(t, "loss")  # the background sort: done before the next step
step("sort by caption + first page", lambda: sort("caption"))
view.sort_order(t, "caption")  # the background sort: done before the next step
v.set_sort(None)
step("full sort by caption", lambda: view.sort_order(t, "caption", ascending=False))


def filtered(text):
    v.set_filter(text)
    return v.matched, page(v)


step("filter + first page", lambda: filtered("label == 3 and loss > 2"))
step("text filter + first page", lambda: filtered('caption contains "77"'))
v.set_filter("")
step("column summaries", lambda: v.summaries([*t.columns, "weight"]))
step("bulk edit of a filter", lambda: t.set_weights("label == 3 and loss > 2", 0.5))
import torch  # noqa: E402,F401  (imports are not the sampler's time)
step("sampler epoch", lambda: t.create_sampler(seed=0).indices())
import tensorflow as tf  # noqa: E402,F401
ids = np.arange(n, dtype=np.int64)


def tf_epoch():
    ds = t.to_tf_dataset(ids, batch_size=8192, seed=0)
    seen = 0
    for x, _, _ in ds:
        seen += int(x.shape[0])
    return seen


step("tf.data epoch of indices", tf_epoch)
print(json.dumps(out))
"""

#: Steps in the order printed, and the memory target of those that have one.
STEPS = [
    "from_pandas",
    "first page",
    "sort by loss + first page",
    "sort by caption + first page",
    "full sort by caption",
    "filter + first page",
    "text filter + first page",
    "column summaries",
    "bulk edit of a filter",
    "sampler epoch",
    "tf.data epoch of indices",
]


def measure(n: int) -> dict:
    """Every step at ``n`` rows, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_CHILD), str(n), tmp],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_scale child at n={n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def run(quick: bool = False) -> list[dict]:
    small, big = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    a, b = measure(small), measure(big)
    s, L = _label(small), _label(big)
    rows = [
        row(
            f"from_pandas, {L} rows",
            b["from_pandas"]["seconds"],
            "s",
            "within 3x",
            f"df.to_parquet, {L} (same frame)",
            b["to_parquet"]["seconds"],
        ),
        row(
            f"peak memory over the frame: from_pandas, {L}",
            b["from_pandas"]["memory"],
            "x",
            "< 2x",
            "df.to_parquet",
            b["to_parquet"]["memory"],
        ),
    ]
    factor = big // small
    for name in STEPS:
        rows.append(
            row(
                f"{name}, {L} (ratio: {L}/{s})",
                b[name]["seconds"],
                "s",
                f"ratio <= {factor} (linear)",
                f"same step, {s}",
                a[name]["seconds"],
            )
        )
    rows.append(
        row(
            f"df.to_parquet, {L} (ratio: {L}/{s})",
            b["to_parquet"]["seconds"],
            "s",
            "-",
            f"same, {s}",
            a["to_parquet"]["seconds"],
        )
    )
    for name in STEPS[1:]:
        rows.append(
            row(
                f"peak memory over the frame: {name}, {L}",
                b[name]["memory"],
                "x",
                "< 2x",
                f"same step, {s}",
                a[name]["memory"],
            )
        )
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    rows = run(quick=quick)
    title = "weightwidget end to end at scale" + (" (quick: 100k beside 1M)" if quick else "")
    print_table(rows, title=title)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
